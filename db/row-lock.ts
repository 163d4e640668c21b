import { sql, type SQL } from 'drizzle-orm';
import type { PgTable, PgUpdateSetSource } from 'drizzle-orm/pg-core';
import type { Db } from './open-database';

/**
 * In a transaction: the rows `where` picks, each locked until the transaction ends, by an UPDATE that
 * sets `column` to itself. Postgres holds their row locks, so a concurrent change or delete of them
 * waits; SQLite runs one write transaction at a time anyway. One statement for both dialects
 * (SELECT … FOR UPDATE has no SQLite form). Answers the rows (none: there is no such row, any more).
 */
export function lockRows<T extends PgTable>(tx: Db, table: T, column: keyof T['$inferInsert'] & keyof T, where: SQL | undefined) {
  const unchanged = { [column]: sql`${table[column]}` } as PgUpdateSetSource<T>;
  return tx.update(table).set(unchanged).where(where).returning();
}

import type { Database } from 'better-sqlite3';
import type { Store } from '../../../db/open-database';

export type Rows = Record<string, unknown[]>;

/**
 * Reads back every row of every table of a SQLite store, to show that an answer changed nothing.
 * SQLite counts the rows each connection has written (`total_changes()`), and the app writes through
 * this very connection: while that count stands still the rows are the ones last read, so they are
 * read again only after a write.
 */
export class ReadBack {
  private readonly sqlite: Database;
  private last: { changes: number; rows: Rows } | undefined;

  constructor(store: Store) {
    if (store.dialect !== 'sqlite') throw new Error('ReadBack reads SQLite stores only');
    this.sqlite = (store.db as unknown as { $client: Database }).$client;
  }

  /** Every table's rows as they are now. */
  rows(): Rows {
    const changes = this.totalChanges();
    if (this.last?.changes !== changes) this.last = { changes, rows: this.readAll() };
    return this.last.rows;
  }

  private totalChanges(): number {
    return (this.sqlite.prepare('select total_changes() as changes').get() as { changes: number }).changes;
  }

  private readAll(): Rows {
    const tables = this.sqlite
      .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")
      .pluck()
      .all() as string[];
    return Object.fromEntries(tables.map((table) => [table, this.sqlite.prepare(`select * from "${table}"`).all()]));
  }
}

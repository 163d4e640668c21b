import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';
import { drizzle as drizzleSqlite, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { drizzle as drizzlePg, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgTransactionConfig } from 'drizzle-orm/pg-core';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { CONNECT_TIMEOUT_MS, GuardedPool } from './postgres-pool';
import * as pgTables from './schema/pg';
import * as sqliteTables from './schema/sqlite';

export type Tables = typeof pgTables;

/**
 * The query builder the services use. It is typed as Postgres's; at run time it is SQLite's when
 * the store is SQLite. The two builders are call-compatible for what the services use (select,
 * insert/update/delete … returning, onConflictDoNothing), which is what lets query code be written
 * once. Dialect-specific needs go through Store, not through `db` directly.
 */
export type Db = NodePgDatabase<Tables>;

export type Dialect = 'postgres' | 'sqlite';

type AnyTable = Tables[keyof Tables];

/** Rows per INSERT statement in insertAll: well under either driver's limit on bound parameters. */
const INSERT_CHUNK = 500;

function chunks<T>(rows: T[]): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) result.push(rows.slice(i, i + INSERT_CHUNK));
  return result;
}

export interface Store {
  readonly dialect: Dialect;
  readonly db: Db;
  readonly t: Tables;
  /**
   * Inserts all rows, however many: all or none. Rows that fit in one statement are one INSERT,
   * atomic by itself (no BEGIN and COMMIT around it: on Postgres those are two more round trips);
   * more than that are several INSERTs in one transaction.
   */
  insertAll<T extends AnyTable>(table: T, rows: T['$inferInsert'][]): Promise<void>;
  /**
   * Runs the statements that `work` yields in one transaction: all or none. Written once for both
   * dialects as a generator: each yielded statement (a select, or a write with `returning()`) is
   * run, and its rows are what the `yield` gives back (`yield* rowsOf(statement)` types them).
   * On SQLite the statements run synchronously inside better-sqlite3's transaction, so no other
   * request's statement can slip in between; on Postgres inside a pg transaction. A statement that
   * fails, or an error thrown by `work`, rolls everything back and rejects.
   */
  transaction<T>(work: (tx: Db) => Transaction<T>): Promise<T>;
  /**
   * Runs the reads that `work` yields as `transaction` does, on one snapshot of the database, so
   * that they agree with each other whatever is written meanwhile: on Postgres a read-only
   * REPEATABLE READ transaction (in a READ COMMITTED one each statement sees the commits made
   * before it began), on SQLite a deferred transaction, which holds no lock that writers wait for.
   */
  snapshot<T>(work: (tx: Db) => Transaction<T>): Promise<T>;
  /**
   * `column` equal to one of `values`, however many: bound as one parameter (a JSON array that
   * SQLite's json_each reads, a Postgres array), where `inArray` binds one per value, which drizzle
   * builds one by one — a few ms for each statement of the 500 reads or delivery marks that a
   * broadcast batches.
   */
  anyOf(column: AnyColumn, values: readonly (string | number)[]): SQL;
  /** Runs a trivial query; rejects when the database cannot be reached. */
  ping(): Promise<void>;
  /** The connection pool's state, for the metrics (Postgres; SQLite has no pool). */
  poolStats?: () => { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

/** What Store.transaction runs: a generator yielding statements and receiving their rows. */
export type Transaction<T> = Generator<PromiseLike<unknown>, T, unknown>;

/** Yields one statement of a transaction and gives back its rows, typed. */
export function* rowsOf<R>(statement: PromiseLike<R>): Generator<PromiseLike<unknown>, R, unknown> {
  return (yield statement) as R;
}

/** Yields the INSERTs of `rows` into `table` within a transaction, in insertAll's chunks (returning their ids, as transactions' writes do). */
export function* insertsOf<T extends AnyTable & { id: AnyColumn }>(tx: Db, table: T, rows: T['$inferInsert'][]): Transaction<void> {
  for (const chunk of chunks(rows)) yield* rowsOf(tx.insert(table as never).values(chunk as never).returning({ id: table.id as never }));
}

export const DEFAULT_SQLITE_FILE = './data/punchclock.sqlite';

const migrationsFolder = (dialect: Dialect) =>
  fileURLToPath(new URL(`./migrations/${dialect === 'postgres' ? 'pg' : 'sqlite'}`, import.meta.url));

/**
 * Opens the database that DATABASE_URL names and brings its schema up to date:
 * unset → a SQLite file under ./data/; ':memory:' → in-memory SQLite; 'sqlite:<path>' → that file;
 * 'postgres://…' → a pg pool.
 */
export async function openDatabase(url: string | undefined, options: OpenOptions = {}): Promise<Store> {
  if (url && /^postgres(ql)?:\/\//.test(url)) return openPostgres(url, options);
  if (!url) return openSqlite(DEFAULT_SQLITE_FILE, options);
  return openSqlite(url === ':memory:' ? url : url.replace(/^(sqlite|file):(\/\/)?/, ''), options);
}

export interface OpenOptions {
  /** Called with every query the services run (benchmarks and tests count them). */
  onQuery?: (sql: string) => void;
}

const queryLogger = ({ onQuery }: OpenOptions) => (onQuery ? { logQuery: (sql: string) => onQuery(sql) } : undefined);

function openSqlite(file: string, options: OpenOptions): Store {
  if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
  const sqlite = new Sqlite(file);
  // First: another process opening the file at the same time holds its lock for a moment.
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  // Postgres has gen_random_uuid(): the same function here lets one INSERT … SELECT make ids on both.
  sqlite.function('gen_random_uuid', { deterministic: false }, () => randomUUID());
  migrateSqlite(sqlite);
  const db = drizzleSqlite(sqlite, { schema: sqliteTables, logger: queryLogger(options) });
  return {
    dialect: 'sqlite',
    db: db as unknown as Db,
    t: sqliteTables as unknown as Tables,
    // better-sqlite3 transactions are synchronous, so no other request's statement can slip in.
    insertAll: async (table, rows) => {
      if (rows.length === 0) return;
      if (rows.length <= INSERT_CHUNK) return void db.insert(table as never).values(rows as never).run();
      db.transaction((tx) => {
        for (const chunk of chunks(rows)) tx.insert(table as never).values(chunk as never).run();
      });
    },
    transaction: (work) => runSqliteTransaction(db, work, 'immediate'),
    snapshot: (work) => runSqliteTransaction(db, work, 'deferred'),
    anyOf: (column, values) => sql`${column} in (select value from json_each(${JSON.stringify(values)}))`,
    ping: async () => void sqlite.prepare('select 1').get(),
    close: async () => void sqlite.close(),
  };
}

/**
 * Runs a transaction's statements (see Store.transaction) in one synchronous better-sqlite3
 * transaction: a drizzle SQLite statement run with .all() returns its rows itself.
 */
async function runSqliteTransaction<T>(db: BetterSQLite3Database<typeof sqliteTables>, work: (tx: Db) => Transaction<T>, behavior: 'immediate' | 'deferred'): Promise<T> {
  return db.transaction(
    (tx) => {
      const steps = work(tx as unknown as Db);
      for (let step = steps.next(); ; step = steps.next((step.value as unknown as { all(): unknown }).all())) {
        if (step.done) return step.value;
      }
    },
    { behavior },
  );
}

/** Runs a transaction's statements (see Store.transaction) one after the other in a pg transaction. */
function runPgTransaction<T>(db: NodePgDatabase<typeof pgTables>, work: (tx: Db) => Transaction<T>, config?: PgTransactionConfig): Promise<T> {
  return db.transaction(async (tx) => {
    const steps = work(tx as unknown as Db);
    for (let step = steps.next(); ; step = steps.next(await step.value)) {
      if (step.done) return step.value;
    }
  }, config);
}

/**
 * drizzle's SQLite migrator, with its bookkeeping table, but in one IMMEDIATE transaction: drizzle
 * reads which migrations ran before its transaction begins, so of two processes opening a file at
 * once, both set out to apply them and the second failed (`table … already exists`), or would run a
 * data migration twice. Holding the write lock from the read on, the second waits for the first
 * (busy_timeout) and then finds nothing left to do, as the Postgres advisory lock makes it.
 */
function migrateSqlite(sqlite: Sqlite.Database): void {
  const migrations = readMigrationFiles({ migrationsFolder: migrationsFolder('sqlite') });
  sqlite
    .transaction(() => {
      sqlite.exec('CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)');
      const last = sqlite.prepare('SELECT created_at FROM "__drizzle_migrations" ORDER BY created_at DESC LIMIT 1').pluck().get();
      const record = sqlite.prepare('INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES (?, ?)');
      for (const migration of migrations) {
        if (last !== undefined && Number(last) >= migration.folderMillis) continue;
        for (const statement of migration.sql) sqlite.exec(statement);
        record.run(migration.hash, migration.folderMillis);
      }
    })
    .immediate();
}

async function openPostgres(url: string, options: OpenOptions): Promise<Store> {
  await migratePostgres(url);
  const pool = new GuardedPool({ connectionString: url, max: 10 });
  // An idle connection that the server drops (restart, failover, terminated backend) is an 'error'
  // on the pool, which would end the process unhandled. The pool discards that client and opens a
  // new one when next needed, so there is nothing else to do.
  pool.on('error', () => {});
  const db = drizzlePg(pool, { schema: pgTables, logger: queryLogger(options) });
  return {
    dialect: 'postgres',
    db,
    t: pgTables,
    insertAll: async (table, rows) => {
      if (rows.length === 0) return;
      if (rows.length <= INSERT_CHUNK) return void (await db.insert(table).values(rows as never));
      await db.transaction(async (tx) => {
        for (const chunk of chunks(rows)) await tx.insert(table).values(chunk as never);
      });
    },
    transaction: (work) => runPgTransaction(db, work),
    snapshot: (work) => runPgTransaction(db, work, { isolationLevel: 'repeatable read', accessMode: 'read only' }),
    anyOf: (column, values) => sql`${column} = any(${arrayLiteral(values)}::${sql.raw(column.getSQLType())}[])`,
    ping: async () => void (await pool.query('select 1')),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => pool.end(),
  };
}

/**
 * The Postgres array literal of `values`, written in one go: node-postgres writes a JS array
 * parameter element by element, escaping each, which for the 500 ids of a broadcast's batched
 * statements was more than half a KB of garbage per delivered long-poll. Elements are quoted, so
 * any text is taken as it is; only a backslash or a double quote needs escaping.
 */
function arrayLiteral(values: readonly (string | number)[]): string {
  if (values.length === 0) return '{}';
  const plain = values.every((value) => typeof value === 'number' || !NEEDS_ESCAPE.test(value));
  return plain ? `{"${values.join('","')}"}` : `{${values.map((value) => `"${String(value).replace(ESCAPED, '\\$&')}"`).join(',')}}`;
}

const NEEDS_ESCAPE = /[\\"]/;
const ESCAPED = /[\\"]/g;

/**
 * Instances that start together must not migrate at once: an advisory lock makes the others wait
 * until the first is done. On a connection of its own, without the pool's statement timeouts: a
 * migration of a large table, and another instance's wait for it, may take longer than the 10 s a
 * request's statement gets. Ending the session releases the lock.
 */
async function migratePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // A connection lost meanwhile fails the query at hand; unheard, its 'error' would end the process.
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('select pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK]);
    await migratePg(drizzlePg(client), { migrationsFolder: migrationsFolder('postgres') });
  } finally {
    await client.end();
  }
}

const MIGRATION_LOCK = 'punchclock:migrate';

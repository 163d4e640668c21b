import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Dialect, type OpenOptions, type Store } from '../../db/open-database';

export interface TestDatabase {
  dialect: Dialect;
  store: Store;
  /** A URL that opens the same database again (a second server instance, a CLI run). */
  url: string;
  drop(): Promise<void>;
}

export const POSTGRES_URL = process.env.TEST_DATABASE_URL;

/** The dialects this run covers: SQLite always, Postgres when TEST_DATABASE_URL is set. */
export const dialects: Dialect[] = POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite'];

export function createTestDatabase(dialect: Dialect, options: OpenOptions = {}): Promise<TestDatabase> {
  return dialect === 'postgres' ? createPostgresDatabase(options) : createSqliteDatabase(options);
}

async function createSqliteDatabase(options: OpenOptions): Promise<TestDatabase> {
  const store = await openDatabase(':memory:', options);
  return { dialect: 'sqlite', store, url: ':memory:', drop: () => store.close() };
}

/** A database of its own on the test server, so test files can run in parallel and start empty. */
async function createPostgresDatabase(options: OpenOptions): Promise<TestDatabase> {
  const database = await createEmptyPostgresDatabase();
  const store = await openDatabase(database.url, options);
  return {
    dialect: 'postgres',
    store,
    url: database.url,
    drop: async () => {
      await store.close();
      await database.drop();
    },
  };
}

/**
 * A database of its own on the test server, as createTestDatabase makes one, but left empty: not
 * opened, so not migrated either (for a test that builds it some other way).
 */
export async function createEmptyPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `punchclock_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdminClient((client) => client.query(`create database "${name}"`));
  const url = new URL(POSTGRES_URL!);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await withAdminClient((client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

const withAdminClient = <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => withPgClient(POSTGRES_URL!, work);

/** Runs `work` on a connection of its own to the Postgres database `url` names, closed after it. */
export async function withPgClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

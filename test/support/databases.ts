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
  const name = `punchclock_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdminClient((client) => client.query(`create database "${name}"`));
  const url = new URL(POSTGRES_URL!);
  url.pathname = `/${name}`;
  const store = await openDatabase(url.toString(), options);
  return {
    dialect: 'postgres',
    store,
    url: url.toString(),
    drop: async () => {
      await store.close();
      await withAdminClient((client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import Sqlite from 'better-sqlite3';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/open-database';
import { STATEMENT_TIMEOUT_MS } from '../../db/postgres-pool';
import { createTestDatabase, POSTGRES_URL, type TestDatabase } from '../support/databases';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SQLITE_MIGRATIONS = fileURLToPath(new URL('../../db/migrations/sqlite', import.meta.url));
const BOOKKEEPING = 'CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)';

/**
 * Another process migrating `file`: in its transaction, it applies every migration, says so, and
 * commits a moment later (while the test's own open has read what ran and waits for the lock).
 */
const OTHER_PROCESS = `
const { parentPort, workerData } = require('node:worker_threads');
const Sqlite = require('better-sqlite3');
const { readMigrationFiles } = require('drizzle-orm/migrator');
const db = new Sqlite(workerData.file);
db.exec('BEGIN IMMEDIATE');
db.exec(workerData.bookkeeping);
for (const migration of readMigrationFiles({ migrationsFolder: workerData.folder })) {
  for (const statement of migration.sql) db.exec(statement);
  db.prepare('INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES (?, ?)').run(migration.hash, migration.folderMillis);
}
parentPort.postMessage('migrating');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
db.exec('COMMIT');
db.close();
`;

/** A directory of the describe block's own, removed after it: the path of a file in it. */
function inTempDir(prefix: string): (name: string) => string {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return (name) => join(dir, name);
}

describe('npm run db:migrate [sqlite]', () => {
  const fileNamed = inTempDir('punchclock-db-migrate-');

  it('migrates the database DATABASE_URL names and exits; run again, it finds nothing to do (README, Scripts)', async () => {
    const file = fileNamed('deploy.sqlite');
    // What `npm run db:migrate` runs (tsx db/migrate.ts), as one process.
    const migrate = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'db/migrate.ts'], { cwd: ROOT, env: { ...process.env, DATABASE_URL: `sqlite:${file}` }, timeout: 60_000 });
    for (let run = 0; run < 2; run++) {
      const { stdout } = await migrate();
      expect(stdout.trim()).toBe('sqlite database is up to date');
      const sqlite = new Sqlite(file, { readonly: true });
      const applied = sqlite.prepare('select count(*) from "__drizzle_migrations"').pluck().get();
      const tables = sqlite.prepare("select name from sqlite_master where type = 'table'").pluck().all();
      sqlite.close();
      expect(applied, `run ${run + 1}`).toBe(readMigrationFiles({ migrationsFolder: SQLITE_MIGRATIONS }).length);
      expect(tables).toEqual(expect.arrayContaining(['users', 'time_entries', 'feature_flags']));
    }
  }, 90_000);
});

describe('migrations of a SQLite file two processes open at once [sqlite]', () => {
  const fileNamed = inTempDir('punchclock-migrate-');

  it('waits for the other process’s migrations and finds them done, instead of applying them again', async () => {
    const file = fileNamed('shared.sqlite');
    // The other process has begun: its bookkeeping table is made, in WAL mode as the server sets it.
    const setUp = new Sqlite(file);
    setUp.pragma('journal_mode = WAL');
    setUp.exec(BOOKKEEPING);
    setUp.close();
    const other = new Worker(OTHER_PROCESS, { eval: true, workerData: { file, folder: SQLITE_MIGRATIONS, bookkeeping: BOOKKEEPING } });
    const exited = new Promise((resolve, reject) => other.once('exit', resolve).once('error', reject));
    await new Promise((resolve, reject) => other.once('message', resolve).once('error', reject));

    const store = await openDatabase(`sqlite:${file}`);
    try {
      await exited;
      const sqlite = new Sqlite(file, { readonly: true });
      const applied = sqlite.prepare('select count(*) from "__drizzle_migrations"').pluck().get();
      sqlite.close();
      // Each once: the other process's.
      expect(applied).toBe(readMigrationFiles({ migrationsFolder: SQLITE_MIGRATIONS }).length);
      const { db, t } = store;
      expect(await db.select().from(t.users)).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(!POSTGRES_URL)('migrations of a Postgres database two instances start on at once [postgres]', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
  });
  afterAll(() => database.drop());

  it('waits for the other instance’s migration however long it takes, longer than a request’s statement may', async () => {
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    await other.query(`select pg_advisory_lock(hashtext('punchclock:migrate'))`);
    const released = new Promise<void>((resolve, reject) =>
      setTimeout(() => other.end().then(resolve, reject), STATEMENT_TIMEOUT_MS + 1000),
    );
    const started = performance.now();
    const store = await openDatabase(database.url).finally(() => released);
    try {
      expect(performance.now() - started).toBeGreaterThan(STATEMENT_TIMEOUT_MS);
      const { db, t } = store;
      expect(await db.select().from(t.users)).toEqual([]);
    } finally {
      await store.close();
    }
  }, STATEMENT_TIMEOUT_MS * 3);
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Store } from '../../db/open-database';
import type { TestDatabase } from './databases';

export interface DyingDatabase {
  /** The database as the dying process sees it. */
  store: Store;
  /** Closes the dying process's store and opens the same database afresh, as a restarted process. */
  restart(): Promise<Store>;
  /** Closes what restart opened and removes the SQLite file. */
  cleanUp(): Promise<void>;
}

/**
 * A database opened by a process that dies at the first statement starting with `diesAt`: that
 * statement and every one after it fail, as when the process is killed there; what it committed
 * before stays, what it had not committed is rolled back. The test's own database on Postgres; on
 * SQLite, whose test database lives in memory, a new file, so that `restart` can open it again.
 */
export async function dyingDatabase(database: TestDatabase, diesAt: string): Promise<DyingDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'punchclock-dying-'));
  const url = database.dialect === 'postgres' ? database.url : `sqlite:${join(dir, 'db.sqlite')}`;
  let dead = false;
  const store = await openDatabase(url, {
    onQuery: (sql) => {
      dead ||= sql.startsWith(diesAt);
      if (dead) throw new Error('the process died');
    },
  });
  let restarted: Store | undefined;
  return {
    store,
    restart: async () => {
      await store.close();
      return (restarted = await openDatabase(url));
    },
    cleanUp: async () => {
      await restarted?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis-server';

const run = promisify(execFile);

/** The newest installed PostgreSQL's programs (Debian keeps them out of the PATH), if any. */
function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(root, versions[0], 'bin');
}

const BIN = postgresBinDir();

/** Whether a cluster of the test's own can be made here (the PostgreSQL server's programs are installed). */
export const canRunOwnPostgres = BIN !== undefined;

/** Postgres refuses to run as root: then its programs run as the `postgres` user Debian's package made. */
const asServerUser = (program: string, args: string[]) =>
  process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', join(BIN!, program), ...args]) : run(join(BIN!, program), args);

/**
 * A PostgreSQL cluster of the test's own, in a temporary directory on a free port, that the test may
 * stop and start (the shared one of TEST_DATABASE_URL serves other test files and must stay up).
 */
export class PostgresCluster {
  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {}

  /** initdb (trust, no fsync: a test's data) and a start. */
  static async create(): Promise<PostgresCluster> {
    if (!BIN) throw new Error('No PostgreSQL server programs under /usr/lib/postgresql');
    const dir = mkdtempSync(join(os.tmpdir(), 'punchclock-pg-'));
    if (process.getuid?.() === 0) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout));
    await asServerUser('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
    const cluster = new PostgresCluster(dir, await freePort());
    await cluster.start();
    return cluster;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /**
   * Starts the server and waits until it takes connections. Should the port be taken meanwhile (by
   * another test file's listen(0) of a moment), it tries again for up to 20 s.
   */
  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
    const log = join(this.dir, 'log');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const logged = existsSync(log) ? readFileSync(log, 'utf8').length : 0;
      try {
        await asServerUser('pg_ctl', ['-D', join(this.dir, 'data'), '-o', options, '-l', log, '-w', '-t', '60', 'start']);
        return;
      } catch (error) {
        const portTaken = /Address already in use/.test(readFileSync(log, 'utf8').slice(logged));
        if (!portTaken || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** A fast shutdown, as an operator's or a failover's: open connections are cut, new ones refused. */
  async stop(): Promise<void> {
    await asServerUser('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', '-t', '60', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

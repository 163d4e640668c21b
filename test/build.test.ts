// Issue 17: production runs compiled JavaScript. `npm run build` bundles the server into dist/, and
// `npm run start:prod` (node dist/main.js) serves from it with no TypeScript loader in the process:
// migrations found beside the bundle, on SQLite and (when configured) on Postgres.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../package.json';
import { npmScript, startServer, stopsGracefullyOnSigterm, type ChildServer } from './support/child-server';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { SLACK_MS } from './support/waiting';

const ROOT = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);

/** `npm run start:prod`'s node arguments (the script execs node: npm's SIGTERM reaches the server). */
const START_PROD = packageJson.scripts['start:prod'].replace(/^exec node /, '').split(' ');

describe('the production build', () => {
  beforeAll(async () => {
    await run('npm', ['run', 'build'], { cwd: ROOT });
  }, 120_000);

  const servers: ChildServer[] = [];
  afterAll(async () => {
    for (const server of servers) await server.kill();
  });

  /** Registers, logs in and reads the user back through the bundle's server. */
  async function serveOne(databaseUrl: string): Promise<void> {
    const server = await startServer({ DATABASE_URL: databaseUrl }, START_PROD);
    servers.push(server);
    const commandLine = readFileSync(`/proc/${server.process.pid}/cmdline`, 'utf8').split('\0');
    expect(commandLine.slice(1, -1)).toEqual(START_PROD);
    expect(commandLine.join(' ')).not.toMatch(/tsx|ts-node|\.ts\b/);
    expect((await fetch(`${server.base}/health/live`)).status).toBe(200);
    const credentials = { username: 'built', password: 'a long enough password' };
    const json = { 'Content-Type': 'application/json' };
    expect((await fetch(`${server.base}/auth/users/`, { method: 'POST', headers: json, body: JSON.stringify(credentials) })).status).toBe(201);
    const login = await fetch(`${server.base}/auth/token/login/`, { method: 'POST', headers: json, body: JSON.stringify(credentials) });
    const { auth_token: token } = (await login.json()) as { auth_token: string };
    const me = await fetch(`${server.base}/auth/users/me/`, { headers: { Authorization: `Token ${token}` } });
    expect(await me.json()).toMatchObject({ username: 'built' });
    expect((await fetch(`${server.base}/docs/`)).status).toBe(200);
  }

  it('serves from dist/ on SQLite, the migrations beside the bundle', async () => {
    await serveOne(':memory:');
  }, 60_000);

  it('builds the CLI and db:migrate in the same form: dist/migrate.js and dist/cli.js, run by plain node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'punchclock-dist-'));
    try {
      const env = { ...process.env, DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` };
      expect((await run('node', ['dist/migrate.js'], { cwd: ROOT, env })).stdout).toContain('sqlite database is up to date');
      await run('node', ['dist/cli.js', 'create-user', '--username', 'root', '--password', 'a long enough password', '--admin'], { cwd: ROOT, env });
      const server = await startServer({ DATABASE_URL: env.DATABASE_URL }, START_PROD);
      servers.push(server);
      const json = { 'Content-Type': 'application/json' };
      const login = await fetch(`${server.base}/auth/token/login/`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'root', password: 'a long enough password' }) });
      const { auth_token: token } = (await login.json()) as { auth_token: string };
      const me = await fetch(`${server.base}/auth/users/me/`, { headers: { Authorization: `Token ${token}` } });
      expect(await me.json()).toMatchObject({ username: 'root', is_admin: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('stops gracefully when `npm run start:prod` gets SIGTERM, as an orchestrator sends it', async () => {
    const server = await startServer({ DATABASE_URL: ':memory:' }, npmScript('start:prod'), 'npm');
    servers.push(server);
    const { answer, signalledAt } = await stopsGracefullyOnSigterm(server);
    expect(answer.body).toMatchObject({ status: 'timeout', notifications: [] });
    expect(answer.at - signalledAt).toBeLessThan(SLACK_MS);
    expect(await server.exited).toBe(0);
  }, 60_000);

  describe.skipIf(!process.env.TEST_DATABASE_URL)('on Postgres', () => {
    let database: TestDatabase;
    beforeAll(async () => {
      database = await createTestDatabase('postgres');
    });
    afterAll(() => database?.drop());

    it('serves from dist/ on Postgres, its migrations read beside the bundle', async () => {
      await serveOne(database.url);
    }, 60_000);
  });
});

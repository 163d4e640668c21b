import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SQLITE_FILE } from '../db/open-database';
import { loadConfig } from '../server/config';
import { STRONG_PASSWORD, uniqueName } from './support/api';
import { call, heldLongPoll, npmScript, startServer, stopsGracefullyOnSigterm, type ChildServer } from './support/child-server';
import { sleep, SLACK_MS } from './support/waiting';

/** `npm start` as a real process: config from the environment, a SQLite file, signals. */
describe('the server process', () => {
  let dir: string;
  const started: ChildServer[] = [];
  const admin = { username: uniqueName('admin'), password: STRONG_PASSWORD };

  /** A process of its own, on a SQLite file of its own. */
  async function start(name: string, env: Record<string, string> = {}, nodeArgs?: string[], command?: string): Promise<ChildServer> {
    const server = await startServer({ DATABASE_URL: `sqlite:${join(dir, `${name}.sqlite`)}`, ...env }, nodeArgs, command);
    started.push(server);
    return server;
  }

  let withAdmin: ChildServer;
  let toStop: ChildServer;
  let byNpm: ChildServer;

  // Started together, before the tests (starting a process may take many seconds on a busy machine).
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'punchclock-'));
    [withAdmin, toStop, byNpm] = await Promise.all([
      start('admin', { ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password }),
      start('sigterm'), // a process of its own: the SIGTERM test ends it
      start('npm', {}, npmScript('start'), 'npm'), // `npm start` itself, as README says to run it
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(started.map((server) => server.kill()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps an idle keep-alive connection open past Node’s 5 s, as load balancers expect', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; reusedSocket: boolean }>((resolve, reject) => {
        const request = http.get(`${withAdmin.base}/health/live`, { agent }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode!, reusedSocket: request.reusedSocket }));
        });
        request.on('error', reject);
      });
    try {
      expect(await get()).toEqual({ status: 200, reusedSocket: false });
      await sleep(6000);
      expect(await get()).toEqual({ status: 200, reusedSocket: true });
    } finally {
      agent.destroy();
    }
  }, 20_000);

  it('creates the admin of ADMIN_USERNAME and ADMIN_PASSWORD at start', async () => {
    const server = withAdmin;
    expect(server.lines.map((line) => line.msg)).toContain('admin account created');
    const login = await call(server.base, 'POST', '/auth/token/login/', { body: admin });
    expect(login.status).toBe(200);
    const me = await call(server.base, 'GET', '/auth/users/me/', { token: login.body.auth_token });
    expect(me.body).toMatchObject({ username: admin.username, is_admin: true });
  });

  it('leaves an existing ADMIN_USERNAME as it is, and creates none unless both variables are set', async () => {
    const [again, half] = await Promise.all([
      start('admin', { ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: 'another long enough password' }), // withAdmin's file
      start('half-admin', { ADMIN_USERNAME: admin.username }),
    ]);
    for (const server of [again, half]) expect(server.lines.map((line) => line.msg)).not.toContain('admin account created');
    expect((await call(again.base, 'POST', '/auth/token/login/', { body: admin })).status).toBe(200);
    expect((await call(again.base, 'POST', '/auth/token/login/', { body: { ...admin, password: 'another long enough password' } })).status).toBe(400);
    expect((await call(half.base, 'POST', '/auth/users/', { body: admin })).status).toBe(201);
  }, 60_000);

  it('refuses to start with an ADMIN_USERNAME it cannot create, rather than start without that admin', async () => {
    await expect(start('bad-admin', { ADMIN_USERNAME: 'root admin', ADMIN_PASSWORD: STRONG_PASSWORD })).rejects.toThrow(
      /exited early with 1[^]*Enter a valid username/,
    );
  });

  it('on SIGTERM answers waiting long-polls and ends streams, then exits 0', async () => {
    const server = toStop;
    // Held by the server (it counts the poll among the user's connections), besides five streams.
    const held = await heldLongPoll(server.base, 60);
    try {
      const signalledAt = Date.now();
      server.process.kill('SIGTERM');

      const answer = await held.answer;
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ status: 'timeout', notifications: [] });
      // At once, not at the poll's 60 s timeout; and the exit is not held up by the client's idle
      // keep-alive connections until main.ts cuts them (10 s after the signal).
      expect(answer.at - signalledAt).toBeLessThan(SLACK_MS);
      await Promise.all(held.streams.map((stream) => stream.ended)); // each ended by the server
      expect(await server.exited).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(SLACK_MS);
    } finally {
      held.close();
    }
  });

  it('passes SIGTERM on through `npm start`: the server behind npm shuts down gracefully, not left running', async () => {
    const { answer, signalledAt } = await stopsGracefullyOnSigterm(byNpm);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'timeout', notifications: [] });
    expect(answer.at - signalledAt).toBeLessThan(SLACK_MS);
    expect(await byNpm.exited).toBe(0);
  });
});

it('listens on 127.0.0.1 and keeps its SQLite file at ./data/punchclock.sqlite unless told otherwise', () => {
  expect(loadConfig({})).toMatchObject({ host: '127.0.0.1', databaseUrl: undefined });
  expect(loadConfig({ HOST: '', DATABASE_URL: '' })).toMatchObject({ host: '127.0.0.1', databaseUrl: undefined });
  expect(loadConfig({ HOST: '0.0.0.0' })).toMatchObject({ host: '0.0.0.0' });
  // openDatabase(undefined) opens this file (its sqlite:, :memory: and postgres:// forms are used by every suite).
  expect(DEFAULT_SQLITE_FILE).toBe('./data/punchclock.sqlite');
});

it('reads PORT and LOG_LEVEL with their defaults, takes an empty one as unset, and names a bad one', () => {
  expect(loadConfig({})).toMatchObject({ port: 8000, logLevel: 'info' });
  // As HOST, DATABASE_URL and the rest: `PORT=` in an env file does not make it listen on a random port.
  expect(loadConfig({ PORT: '', LOG_LEVEL: '' })).toMatchObject({ port: 8000, logLevel: 'info' });
  expect(loadConfig({ PORT: ' ' })).toMatchObject({ port: 8000 });
  expect(loadConfig({ PORT: '0', LOG_LEVEL: 'warn' })).toMatchObject({ port: 0, logLevel: 'warn' });
  for (const bad of ['http', '-1', '65536', '80.5']) expect(() => loadConfig({ PORT: bad }), bad).toThrow(/^PORT must be 0\.\.65535/);
  // pino's own refusal ("default level:verbose must be included in custom levels") names no variable.
  expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(/^LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent/);
});

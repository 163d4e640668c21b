import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD, uniqueName } from './support/api';

const ROOT = new URL('..', import.meta.url).pathname;

interface LogLine {
  msg: string;
  url?: string;
}

/** `npm start` as a real process: config from the environment, a SQLite file, signals. */
describe('the server process', () => {
  let dir: string;
  let child: ChildProcess;
  let base: string;
  const lines: LogLine[] = [];
  const admin = { username: uniqueName('admin'), password: STRONG_PASSWORD };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'punchclock-'));
    child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
        ADMIN_USERNAME: admin.username,
        ADMIN_PASSWORD: admin.password,
        LOG_LEVEL: 'info',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const listening = new Promise<LogLine>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (text) => {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        if (line.msg === 'punchclock listening') resolve(line);
      });
      child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    });
    base = (await listening).url!;
  }, 60_000);

  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (path: string, body: unknown, token?: string) =>
    fetch(base + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Token ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  it('creates the admin of ADMIN_USERNAME and ADMIN_PASSWORD at start', async () => {
    expect(lines.map((line) => line.msg)).toContain('admin account created');
    const login = await post('/auth/token/login/', admin);
    expect(login.status).toBe(200);
    const { auth_token } = (await login.json()) as { auth_token: string };
    const me = await fetch(`${base}/auth/users/me/`, { headers: { Authorization: `Token ${auth_token}` } });
    expect(await me.json()).toMatchObject({ username: admin.username, is_admin: true });
  });

  it('on SIGTERM answers waiting long-polls, then exits 0', async () => {
    const username = uniqueName();
    expect((await post('/auth/users/', { username, password: STRONG_PASSWORD })).status).toBe(201);
    const { auth_token } = (await (await post('/auth/token/login/', { username, password: STRONG_PASSWORD })).json()) as {
      auth_token: string;
    };
    const poll = fetch(`${base}/api/notifications/long-poll/?timeout=60`, {
      headers: { Authorization: `Token ${auth_token}` },
    }).then(async (res) => ({ status: res.status, body: await res.json(), at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 500));

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const signalledAt = Date.now();
    child.kill('SIGTERM');

    const answer = await poll;
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'timeout', notifications: [] });
    expect(answer.at - signalledAt).toBeLessThan(3000);
    expect(await exited).toBe(0);
    // Not held up by the client's idle keep-alive connection.
    expect(Date.now() - signalledAt).toBeLessThan(3000);
  });
});

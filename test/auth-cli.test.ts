// `npm run cli -- create-user …` run as a real child process against a real database of each dialect.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp, createServices, type Services } from '../server/app';
import { STRONG_PASSWORD, uniqueName } from './support/api';
import { createTestDatabase, dialects } from './support/databases';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe.each(dialects)('cli create-user [%s]', (dialect) => {
  let databaseUrl: string;
  let store: Store;
  let cleanup: () => Promise<void>;
  /** An app over the same database, to log in as the users the CLI made. */
  let services: Services;
  let http: supertest.Agent;

  beforeAll(async () => {
    if (dialect === 'postgres') {
      const database = await createTestDatabase('postgres');
      ({ url: databaseUrl, store } = database);
      cleanup = database.drop;
    } else {
      const dir = await mkdtemp(join(tmpdir(), 'punchclock-cli-'));
      databaseUrl = join(dir, 'cli.sqlite');
      store = await openDatabase(databaseUrl);
      cleanup = async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      };
    }
    const deps = { store, logger: pino({ level: 'silent' }), rateLimits: false };
    services = createServices(deps);
    http = supertest.agent(createApp(deps, services));
  });
  afterAll(async () => {
    services?.hub.close();
    await cleanup?.();
  });

  async function cli(...args: string[]): Promise<CliResult> {
    try {
      // What `npm run cli --` runs (tsx server/cli.ts), as one process: npx and the tsx wrapper
      // would each add a node start-up to every run.
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: databaseUrl },
        timeout: 30_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const { code, stdout, stderr } = error as { code?: unknown; stdout?: string; stderr?: string };
      if (typeof code !== 'number') throw error; // not an exit status: the spawn itself failed
      return { code, stdout: stdout ?? '', stderr: stderr ?? '' };
    }
  }

  const findUser = async (username: string) => {
    const { db, t } = store;
    return db.select().from(t.users).where(eq(t.users.username, username));
  };

  /** Logs in over HTTP as that user and answers GET /auth/users/me/. */
  async function me(username: string, password: string) {
    const login = await http.post('/auth/token/login/').send({ username, password }).expect(200);
    return (await http.get('/auth/users/me/').set('Authorization', `Token ${login.body.auth_token}`).expect(200)).body;
  }

  const userCount = async () => {
    const { db, t } = store;
    return (await db.select({ id: t.users.id }).from(t.users)).length;
  };

  it('creates an admin and a plain user that can log in', async () => {
    const admin = uniqueName('cli_admin');
    const plain = uniqueName('cli_plain');
    const [made, madePlain] = await Promise.all([
      cli('create-user', '--username', admin, '--password', STRONG_PASSWORD, '--admin', '--first-name', 'Zoë', '--last-name', '山田'),
      cli('create-user', '--username', plain, '--password', STRONG_PASSWORD),
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(madePlain.code, madePlain.stderr).toBe(0);

    const [row] = await findUser(admin);
    expect(row).toMatchObject({ username: admin, isAdmin: true, firstName: 'Zoë', lastName: '山田' });
    expect(row.passwordHash).not.toContain(STRONG_PASSWORD);
    expect(made.stdout).toContain(`created admin user ${admin} (id ${row.id})`);
    const [plainRow] = await findUser(plain);
    expect(plainRow).toMatchObject({ username: plain, isAdmin: false, firstName: '', lastName: '' });
    expect(madePlain.stdout).toContain(`created user ${plain} (id ${plainRow.id})`);

    expect(await me(admin, STRONG_PASSWORD)).toEqual({
      id: row.id,
      username: admin,
      first_name: 'Zoë',
      last_name: '山田',
      profile_image: null,
      is_admin: true,
    });
    expect(await me(plain, STRONG_PASSWORD)).toMatchObject({ id: plainRow.id, is_admin: false });
  });

  it('holds names to the API’s rule: trimmed, at most 150 characters', async () => {
    const [trimmed, tooLong] = [uniqueName('cli_trim'), uniqueName('cli_long')];
    const made = await cli('create-user', '--username', trimmed, '--password', STRONG_PASSWORD, '--first-name', '  Ann  ');
    expect(made.code, made.stderr).toBe(0);
    expect((await findUser(trimmed))[0]).toMatchObject({ firstName: 'Ann' });
    const refused = await cli('create-user', '--username', tooLong, '--password', STRONG_PASSWORD, '--last-name', 'x'.repeat(151));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('last_name: String must contain at most 150 character(s)');
    expect(await findUser(tooLong)).toHaveLength(0);
  });

  it('refuses a duplicate username and keeps the existing password', async () => {
    const existing = uniqueName('cli_existing');
    await services.auth.register({ username: existing, password: STRONG_PASSWORD });
    const dup = await cli('create-user', '--username', existing, '--password', 'a different password', '--admin');
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toContain('username: A user with that username already exists.');
    expect(dup.stdout).toBe('');
    expect(await findUser(existing)).toHaveLength(1);
    // Neither the password nor the admin flag changed.
    expect(await me(existing, STRONG_PASSWORD)).toMatchObject({ username: existing, is_admin: false });
  });

  it('refuses weak passwords and bad usage with a message on stderr and creates nothing', async () => {
    const before = await userCount();
    const weak = uniqueName('cli_weak');
    const numeric = uniqueName('cli_numeric');
    const noPassword = uniqueName('cli_nopass');
    const [short, digits, missing, unknownOption, unknownCommand, badName] = await Promise.all([
      cli('create-user', '--username', weak, '--password', 'short', '--admin'),
      cli('create-user', '--username', numeric, '--password', '1234567890'),
      cli('create-user', '--username', noPassword),
      cli('create-user', '--username', uniqueName('cli_opt'), '--password', STRONG_PASSWORD, '--superuser'),
      cli('delete-everything'),
      cli('create-user', '--username', 'bad name!', '--password', STRONG_PASSWORD),
    ]);
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toContain('username: Enter a valid username');
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain('password: This password is too short.');
    expect(digits.code).not.toBe(0);
    expect(digits.stderr).toContain('password: This password is entirely numeric.');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('usage: npm run cli -- create-user');
    expect(unknownOption.code).not.toBe(0);
    expect(unknownOption.stderr).toContain('--superuser');
    expect(unknownCommand.code).not.toBe(0);
    expect(unknownCommand.stderr).toContain('usage: npm run cli -- create-user');
    for (const result of [short, digits, missing, unknownOption, unknownCommand, badName]) expect(result.stdout).toBe('');

    for (const username of [weak, numeric, noPassword]) expect(await findUser(username)).toHaveLength(0);
    expect(await userCount()).toBe(before);
  });
});

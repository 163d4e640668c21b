// The SDK as frontend teams get it (issue 16): built, packed with `npm pack`, installed from the
// tarball into a new project of its own, type-checked there with `tsc --strict`, and run there —
// as an ES module and as CommonJS — against a live server.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeApi, STRONG_PASSWORD, uniqueName } from './support/api';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

/** A file of an app that uses the SDK: compiles only if the package's types are whole and right. */
const APP_TS = `
import { createClient, UnauthorizedError, type Notification } from '@punchclock/client';

export async function run(baseUrl: string, token: string): Promise<string[]> {
  const client = createClient({ baseUrl, token });
  const projects = await client.projects.list();
  if (projects.status === 200) projects.body.map((project) => project.title.toUpperCase());
  // @ts-expect-error a title is a string
  void client.projects.create({ body: { title: 42 } });
  const received: string[] = [];
  const subscription = client.notifications.subscribe({
    timeout: 5,
    onNotifications: (batch: Notification[]) => void received.push(...batch.map((n) => n.message)),
    onError: (error) => {
      if (error instanceof UnauthorizedError) received.push('logged out');
    },
  });
  await client.notifications.sendTest({ body: { type: 'INFO', message: 'hello from the package' } });
  while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  subscription.close();
  await subscription.done;
  return received;
}
`;

const TSCONFIG = JSON.stringify({
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, lib: ['ES2022', 'DOM'], types: [] },
  files: ['app.ts'],
});

const ESM_MAIN = `
import { createClient } from '@punchclock/client';
const [baseUrl, username, password] = process.argv.slice(2);
const anonymous = createClient({ baseUrl });
const login = await anonymous.auth.login({ body: { username, password } });
const client = createClient({ baseUrl, token: login.body.auth_token });
const received = [];
const subscription = client.notifications.subscribe({ timeout: 5, onNotifications: (batch) => received.push(...batch.map((n) => n.message)) });
await client.notifications.sendTest({ body: { type: 'INFO', message: 'hello, ES module' } });
const deadline = Date.now() + 15_000;
while (received.length === 0) {
  if (Date.now() > deadline) {
    console.error('the subscription received nothing within 15 s');
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
subscription.close();
await subscription.done;
console.log(JSON.stringify(received));
`;

const CJS_MAIN = `
const { createClient, UnauthorizedError } = require('@punchclock/client');
const [baseUrl] = process.argv.slice(2);
createClient({ baseUrl, token: 'not a token' }).projects.list().then(
  () => console.log('answered'),
  (error) => console.log(error instanceof UnauthorizedError ? 'UnauthorizedError' : String(error)),
);
`;

describeApi(
  'the packed SDK',
  (ctx) => {
    let project: string;

    beforeAll(async () => {
      project = mkdtempSync(join(tmpdir(), 'punchclock-sdk-app-'));
      // `npm pack` builds it first (prepack).
      await run('npm', ['pack', '--pack-destination', project], { cwd: join(ROOT, 'client') });
      const tarball = readdirSync(project).find((name) => name.endsWith('.tgz'))!;
      writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-app', private: true, type: 'module' }));
      // The dependencies come from npm's cache when it has them (they are the repository's own).
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${tarball}`], { cwd: project });
      writeFileSync(join(project, 'app.ts'), APP_TS);
      writeFileSync(join(project, 'tsconfig.json'), TSCONFIG);
      writeFileSync(join(project, 'main.mjs'), ESM_MAIN);
      writeFileSync(join(project, 'main.cjs'), CJS_MAIN);
    }, 180_000);
    afterAll(() => project && rmSync(project, { recursive: true, force: true }));

    it('installs from its tarball with the contract inside and only zod and @ts-rest/core beside it', async () => {
      const { stdout } = await run('npm', ['ls', '--all', '--parseable', '--omit=dev'], { cwd: project });
      const installed = stdout.split('\n').filter((line) => line.includes('node_modules')).map((line) => line.split('node_modules/').at(-1));
      expect(installed).toEqual(expect.arrayContaining(['@punchclock/client', 'zod', '@ts-rest/core']));
      expect(installed).toHaveLength(3);
    });

    it('type-checks an app that uses it with tsc --strict', async () => {
      await run(TSC, ['-p', 'tsconfig.json'], { cwd: project });
    }, 60_000);

    it('runs as an ES module and as CommonJS against a live server', async () => {
      const baseUrl = await ctx.listen();
      const username = uniqueName('packed');
      await ctx.services.auth.register({ username, password: STRONG_PASSWORD });
      // Each app ends itself (the ES module after 15 s without its notification, with the reason on
      // stderr, which a failed run shows); the kill is for an app that hangs anyway, so that none
      // outlives the test.
      const ended = { cwd: project, timeout: 30_000, killSignal: 'SIGKILL' as const };
      const esm = await run(process.execPath, ['main.mjs', baseUrl, username, STRONG_PASSWORD], ended);
      expect(JSON.parse(esm.stdout)).toEqual(['hello, ES module']);
      const cjs = await run(process.execPath, ['main.cjs', baseUrl], ended);
      expect(cjs.stdout.trim()).toBe('UnauthorizedError');
    }, 60_000);
  },
  { dialects: ['sqlite'] },
);

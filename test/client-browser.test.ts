// The SDK in a real browser (issue 16): headless Chromium loads a small page that imports the built
// package, subscribes, and lists what it is handed (test/browser/sdk-page.html). One tab shows a
// notification made through the API (a screenshot is kept in test/artifacts/); three tabs share one
// connection to the server, each shows every notification once, and closing the leader tab hands
// over without losing one, also when the server hears of the old leader's connection end late (a
// proxy in between). Outside CI the suite is skipped, with one line, where no Chromium is.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, createServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import express from 'express';
import { pino } from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HANDOVER_SETTLE_MS } from '../client/src/notifications/shared-across-tabs';
import { createApp, createServices, type Services } from '../server/app';
import { STRONG_PASSWORD, uniqueName } from './support/api';
import { chromiumAvailable, launchChromium } from './support/chromium';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { graceForStrayEvents, pastCreation, sleep, until } from './support/waiting';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test', 'artifacts');

describe.runIf(chromiumAvailable('SDK browser tests'))('the SDK in a browser', () => {
  let database: TestDatabase;
  let services: Services;
  let server: Server;
  let origin: string;
  let browser: Browser;
  let token: string;
  let userId: number;

  beforeAll(async () => {
    await promisify(execFile)('npm', ['run', 'build:client'], { cwd: ROOT });
    database = await createTestDatabase('sqlite');
    const deps = { store: database.store, logger: pino({ level: 'silent' }), rateLimits: false };
    services = createServices(deps);
    // The page, the built package and its dependencies, served from the API's origin.
    const site = express();
    site.get('/app/', (_req, res) => res.sendFile(join(ROOT, 'test', 'browser', 'sdk-page.html')));
    site.use('/sdk', express.static(join(ROOT, 'client', 'dist')));
    site.use('/node_modules/zod', express.static(join(ROOT, 'node_modules', 'zod')));
    site.use('/node_modules/@ts-rest/core', express.static(join(ROOT, 'node_modules', '@ts-rest', 'core')));
    site.use(createApp(deps, services));
    server = site.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const username = uniqueName('browser');
    userId = (await services.auth.register({ username, password: STRONG_PASSWORD })).id;
    token = await services.auth.login(username, STRONG_PASSWORD, '127.0.0.1');
    browser = await launchChromium();
  }, 120_000);

  // Every answer ends written (delivered) or lost (offered again): a notification still claimed once
  // the tabs are gone would never be delivered (a closing tab's long-poll once kept one so).
  afterEach(async () => {
    await until(() => services.claims.size() === 0, 'no notification left claimed');
  });

  afterAll(async () => {
    await browser?.close();
    services?.hub.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await database?.drop();
  });

  /** A notification for the user, created after the one before (oldest-first order is by creation time). */
  const send = async (message: string) => {
    const [row] = await services.notifications.notify([userId], { type: 'INFO', message });
    await pastCreation(row);
  };
  const received = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { received: string[] }).received ?? []);
  const isLeader = (page: Page): Promise<boolean> =>
    page.evaluate(() => Boolean((window as unknown as { subscription?: { isLeader?: boolean } }).subscription?.isLeader));
  /** A tab of the page; `fragment` adds to what its URL's fragment says (the page reads `share=false`). */
  const openTab = async (context: BrowserContext, at = origin, beforeLoad?: (page: Page) => Promise<unknown>, fragment = '') => {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await beforeLoad?.(page);
    await page.goto(`${at}/app/#token=${token}${fragment}`);
    await page.waitForFunction(() => 'subscription' in window);
    return page;
  };
  const waitingConnections = () => services.hub.stats().connections;
  const leaderOf = async (tabs: Page[]) => {
    const leaders = await Promise.all(tabs.map(isLeader));
    return leaders.filter(Boolean).length === 1 ? tabs[leaders.indexOf(true)] : undefined;
  };

  it('shows a notification made through the API', async () => {
    const context = await browser.newContext();
    try {
      const page = await openTab(context);
      await until(() => waitingConnections() === 1, 'the page’s long-poll');
      await send('Hello from the server');
      await page.locator('li', { hasText: 'Hello from the server' }).waitFor();
      expect(await received(page)).toEqual(['Hello from the server']);
      expect(await page.locator('#mode').textContent()).toBe('long-poll');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'sdk-notification.png') });
    } finally {
      await context.close();
      await until(() => waitingConnections() === 0, 'the page’s long-poll to end');
    }
  }, 60_000);

  /** Three tabs of one user: one connection, every notification once in each, a handover that loses none. */
  async function threeTabs(context: BrowserContext): Promise<void> {
    const tabs = [await openTab(context), await openTab(context), await openTab(context)];
    await until(() => leaderOf(tabs), 'one leader');
    await until(() => waitingConnections() === 1, 'one long-poll');

    await send('one');
    await send('two');
    // Waits for at least as many as expected, then compares: a failure shows what each tab has.
    for (const tab of tabs) await until(async () => (await received(tab)).length >= 2, 'both in every tab').catch(() => {});
    for (const tab of tabs) expect(await received(tab)).toEqual(['one', 'two']);

    const leader = await until(() => leaderOf(tabs), 'one leader');
    const others = tabs.filter((tab) => tab !== leader);
    await leader.close();
    // Made while the leadership changes hands: none may be lost.
    await send('during the handover');
    await until(() => leaderOf(others), 'a new leader');
    await send('after the handover');
    for (const tab of others) await until(async () => (await received(tab)).length >= 4, 'all four in the remaining tabs', 15_000).catch(() => {});
    for (const tab of others) expect(await received(tab)).toEqual(['one', 'two', 'during the handover', 'after the handover']);
    await until(() => waitingConnections() === 1, 'one long-poll again');
  }

  it('holds one connection for three tabs, shows each notification once in each, and hands over when the leader closes', async () => {
    const context = await browser.newContext();
    try {
      await threeTabs(context);
    } finally {
      await context.close();
      await until(() => waitingConnections() === 0, 'the tabs’ long-poll to end');
    }
  }, 90_000);

  /**
   * Two tabs of `context` behind a proxy that passes the old leader's connection end on a second
   * late: the server answers that connection with the notification made meanwhile, and marks it
   * delivered. Closes `context`.
   */
  async function lateClosingHandover(context: BrowserContext): Promise<void> {
    const proxy = await lateClosingProxy(server, 1000);
    try {
      const tabs = [await openTab(context, proxy.origin), await openTab(context, proxy.origin)];
      const leader = await until(() => leaderOf(tabs), 'one leader');
      await until(() => waitingConnections() === 1, 'one long-poll');
      const [other] = tabs.filter((tab) => tab !== leader);
      await leader.close();
      // Made while the old leader's long-poll is still open to the server (the proxy holds it for a
      // second): the server answers it there — also when the new leader waits too, the hub wakes the
      // older wait first — and marks it delivered. (Without the handover's later looks this failed.)
      const message = uniqueName('to the closed tab');
      await send(message);
      await until(async () => (await services.notifications.list(userId, { limit: 1 })).items[0]?.deliveredAt, 'it to be marked delivered');
      await until(async () => (await received(other)).length === 1, 'it in the other tab', HANDOVER_SETTLE_MS + 10_000);
      expect(await received(other)).toEqual([message]);
    } finally {
      await context.close();
      await proxy.close();
      await until(() => waitingConnections() === 0, 'the tabs’ long-poll to end');
    }
  }

  it('loses none when the server hears of the old leader’s connection end late, with no notification after it', async () => {
    await lateClosingHandover(await browser.newContext());
  }, 90_000);

  it('loses none in that handover when the tabs’ clock is ten minutes ahead of the server’s', async () => {
    const context = await browser.newContext();
    await context.addInitScript((aheadMs) => {
      const ServerDate = Date;
      class AheadDate extends ServerDate {
        constructor(...args: ConstructorParameters<DateConstructor> | []) {
          if (args.length === 0) super(ServerDate.now() + aheadMs);
          else super(...(args as ConstructorParameters<DateConstructor>));
        }
        static override now() {
          return ServerDate.now() + aheadMs;
        }
      }
      globalThis.Date = AheadDate as DateConstructor;
    }, 10 * 60_000);
    await lateClosingHandover(context);
  }, 90_000);

  it('does the same by heartbeats in a browser without Web Locks', async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
    try {
      const probe = await context.newPage();
      await probe.goto(`${origin}/health/`);
      expect(await probe.evaluate(() => navigator.locks)).toBeUndefined();
      await probe.close();
      await threeTabs(context);
    } finally {
      await context.close();
      await until(() => waitingConnections() === 0, 'the tabs’ long-poll to end');
    }
  }, 90_000);

  it('holds a connection per tab with shareAcrossTabs: false; each notification reaches one of them', async () => {
    const context = await browser.newContext();
    try {
      const tabs = [await openTab(context, origin, undefined, '&share=false'), await openTab(context, origin, undefined, '&share=false')];
      await until(() => waitingConnections() === 2, 'a long-poll for each tab');
      expect(await Promise.all(tabs.map(isLeader))).toEqual([false, false]);
      await send('to one of two');
      // The server hands a notification to one connection of the user: nothing relays it to the other tab.
      await until(async () => (await Promise.all(tabs.map(received))).flat().length >= 1, 'it in a tab').catch(() => {});
      await graceForStrayEvents(500);
      expect((await Promise.all(tabs.map(received))).flat()).toEqual(['to one of two']);
    } finally {
      await context.close();
      await until(() => waitingConnections() === 0, 'the tabs’ long-polls to end');
    }
  }, 60_000);

  it('shows in a tab nothing delivered before it opened, whatever another tab relays', async () => {
    const [before] = await services.notifications.notify([userId], { type: 'INFO', message: 'delivered before the tabs opened' });
    await services.notifications.markDelivered(userId, before.id);
    // The tabs' lists of the newest are slowed, the second's most: the first tab's catch-up runs
    // while the second does not yet know what was delivered before it opened.
    const slowLists = (ms: number) => (page: Page) =>
      page.route(/\/api\/notifications\/\?limit=100$/, async (route) => {
        await sleep(ms);
        await route.continue();
      });
    const context = await browser.newContext();
    try {
      const tabs = [await openTab(context, origin, slowLists(500)), await openTab(context, origin, slowLists(3000))];
      await until(() => waitingConnections() === 1, 'one long-poll');
      await send('after the tabs opened');
      for (const tab of tabs) await until(async () => (await received(tab)).length >= 1, 'it in every tab').catch(() => {});
      expect(await Promise.all(tabs.map(received))).toEqual([['after the tabs opened'], ['after the tabs opened']]);
    } finally {
      await context.close();
      await until(() => waitingConnections() === 0, 'the tabs’ long-poll to end');
    }
  }, 60_000);
});

/**
 * A TCP proxy to `target` that passes the end of a client's connection on only `lagMs` later, as a
 * load balancer may: meanwhile the server still answers that connection, and what it sends there
 * reaches no one.
 */
async function lateClosingProxy(target: Server, lagMs: number): Promise<{ origin: string; close(): Promise<void> }> {
  const { port } = target.address() as AddressInfo;
  const proxy: TcpServer = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    client.pipe(upstream, { end: false });
    upstream.pipe(client);
    client.on('close', () => setTimeout(() => upstream.destroy(), lagMs));
    client.on('error', () => client.destroy());
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => proxy.close(() => resolve())),
  };
}

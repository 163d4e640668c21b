// The docs page (Swagger UI at /docs) works in a real browser under the security headers: the
// reference renders, and the browser reports no Content-Security-Policy violation.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../server/app';
import { chromiumAvailable, launchChromium } from './support/chromium';
import { createTestDatabase, type TestDatabase } from './support/databases';

describe.runIf(chromiumAvailable('docs browser test'))('the docs page in a browser', () => {
  let database: TestDatabase;
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    server = createApp({ store: database.store, logger: pino({ level: 'silent' }), rateLimits: false }).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await database?.drop();
  });

  it('renders the API reference with no Content-Security-Policy violation', async () => {
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/docs/`);
    expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('.swagger-ui .info .title', { hasText: 'Punchclock' }).waitFor({ timeout: 20_000 });
    await page.locator('.opblock-tag', { hasText: 'invitations' }).first().waitFor();
    expect(violations).toEqual([]);
  }, 60_000);
});

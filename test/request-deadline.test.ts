// Every request but long-polls and streams has a deadline (REQUEST_DEADLINE_MS, 30 s; shortened here):
// past it, a 503 JSON answer with Retry-After instead of a client held until something gives up.
import http from 'node:http';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp, createServices } from '../server/app';
import { REQUEST_DEADLINE_MS, RequestDeadline } from '../server/http/request-deadline';
import { HEADERS_TIMEOUT_MS, holdIdleConnectionsForLoadBalancers, KEEP_ALIVE_TIMEOUT_MS } from '../server/http/server-timeouts';
import { describeApi } from './support/api';
import { createTestDatabase, POSTGRES_URL, type TestDatabase } from './support/databases';
import { FreezableProxy } from './support/freezable-proxy';
import { SLACK_MS, until } from './support/waiting';

const DEADLINE_MS = 300;

it('defaults to the README\'s 30 s deadline, 65 s keep-alive and 66 s headers timeout', () => {
  expect(REQUEST_DEADLINE_MS).toBe(30_000);
  const server = http.createServer();
  holdIdleConnectionsForLoadBalancers(server);
  expect([server.keepAliveTimeout, server.headersTimeout]).toEqual([65_000, 66_000]);
  expect([KEEP_ALIVE_TIMEOUT_MS, HEADERS_TIMEOUT_MS]).toEqual([65_000, 66_000]);
});

it('answers within the deadline, not up to a sweep after it: a proxy that gives up at 30 s gets the 503', async () => {
  vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'], now: 0 });
  try {
    const deadline = new RequestDeadline(REQUEST_DEADLINE_MS, []);
    const answeredAt = new Map<string, number>();
    const watch = (name: string) =>
      deadline.watch({ headersSent: false, destroyed: false, socket: { destroyed: false } } as http.ServerResponse, { log: () => pino({ level: 'silent' }), write: () => void answeredAt.set(name, Date.now()) });
    // The sweeps run from the first request on; the second comes just after one of them.
    watch('first');
    await vi.advanceTimersByTimeAsync(1);
    watch('second');
    await vi.advanceTimersByTimeAsync(REQUEST_DEADLINE_MS + 2000);
    expect(answeredAt.get('first')).toBeGreaterThanOrEqual(REQUEST_DEADLINE_MS - 1000);
    expect(answeredAt.get('first')).toBeLessThanOrEqual(REQUEST_DEADLINE_MS);
    expect(answeredAt.get('second')! - 1).toBeGreaterThanOrEqual(REQUEST_DEADLINE_MS - 1000);
    expect(answeredAt.get('second')! - 1).toBeLessThanOrEqual(REQUEST_DEADLINE_MS);
  } finally {
    vi.useRealTimers();
  }
});

describeApi(
  'request deadline: the routes that wait by design',
  (ctx) => {
    it('lets a long-poll wait past the deadline, however its path is spelled', async () => {
      const user = await ctx.createUser();
      for (const path of ['/api/notifications/long-poll/', '/api/notifications/long-poll', '/API/Notifications/Long-Poll/', '/api/notifications/long%2Dpoll/', '/api/%6Eotifications/long-poll/']) {
        const res = await ctx.http.get(`${path}?timeout=1`).set(user.auth);
        expect([res.status, res.body.status], path).toEqual([200, 'timeout']);
      }
    });
  },
  { requestDeadlineMs: DEADLINE_MS },
);

// A database that hangs (its connections go through a proxy of the test's own, which it freezes).
describe.skipIf(!POSTGRES_URL)('request deadline: a database that hangs [postgres]', () => {
  let database: TestDatabase;
  let proxy: FreezableProxy;
  let store: Store;
  let http: supertest.Agent;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    const proxied = await FreezableProxy.inFrontOfPostgres(database.url);
    proxy = proxied.proxy;
    store = await openDatabase(proxied.url);
    const deps = { store, logger: pino({ level: 'silent' }), rateLimits: false, requestDeadlineMs: DEADLINE_MS };
    const services = createServices(deps);
    http = supertest.agent(createApp(deps, services));
    // A token without a login: a password hash can take longer than the short deadline on a busy machine.
    const user = await services.auth.register({ username: 'deadline_user', password: 'a long enough password' });
    token = await services.sessions.open(user.id);
  });

  afterAll(async () => {
    proxy?.thaw();
    await store?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('answers 503 with Retry-After once the deadline has passed, and serves again when the database does', async () => {
    await http.get('/api/projects/').set('Authorization', `Token ${token}`).expect(200);
    proxy.freeze();
    try {
      const startedAt = Date.now();
      const res = await http.post('/api/projects/').set('Authorization', `Token ${token}`).send({ title: 'Slow' }).timeout(DEADLINE_MS + SLACK_MS);
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ detail: expect.stringMatching(/could not be answered within 0.3 s/) });
      expect(res.headers['retry-after']).toBe('5');
      // Within the deadline, at most one sweep (a tenth of it) early.
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(DEADLINE_MS * 0.9);
    } finally {
      proxy.thaw();
    }
    // The late end of that request is dropped; the app serves on.
    await until(async () => (await http.get('/api/projects/').set('Authorization', `Token ${token}`)).status === 200, 'the app to serve again');
  });
});

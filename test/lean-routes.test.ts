import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { initContract } from '@ts-rest/core';
import etag from 'etag';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createApp, createServices, REALTIME_DEFAULTS, type AppDependencies, type Services } from '../server/app';
import { useRequestLogging } from '../server/http/request-logging';
import { securityHeaders } from '../server/http/security-headers';
import { serveBeforeExpress } from '../server/http/serve-before-express';
import { contract } from '../contract';
import { authRouter } from '../server/auth/auth.router';
import { featureFlagsRouter } from '../server/feature-flags/feature-flags.router';
import { leanContractGet } from '../server/http/lean-contract-get';
import { leanRoutes, type LeanRoute } from '../server/http/lean-route';
import { REQUEST_DEADLINE_MS, RequestDeadline, ROUTES_THAT_WAIT } from '../server/http/request-deadline';
import { weakEtag } from '../server/http/json-answer';
import { notificationLeanRoutes } from '../server/notifications/lean-routes';
import { describeApi, type ApiContext, type TestUser } from './support/api';
import { until } from './support/waiting';

const POLL = '/api/notifications/long-poll/';
const CHECK = '/api/feature-flags/user-features/';
const SSE = '/api/notifications/sse/';
const ORIGIN = 'https://app.example';

interface RawAnswer {
  status: number;
  /** Names and values in the order they came, Date and X-Request-Id (different each time) masked. */
  headers: string[];
  body: string;
}

/** Serves `handler` on a port for the suite; returns its base URL. */
function served(handler: http.RequestListener): { url: () => string; close: () => Promise<void> } {
  const server = http.createServer(handler);
  beforeAll(() => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)));
  return {
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Two apps on the suite's services and database, served for the suite, with CORS as a browser client
 * would meet it: the default one (plain requests of the lean routes served before express) and one
 * that sends every request through express's contract routes.
 */
function leanAndExpressApps(ctx: ApiContext, deps: (leanRoutes: boolean) => Partial<AppDependencies> = () => ({})) {
  const appWith = (leanRoutes: boolean) =>
    createApp(
      { store: ctx.database.store, logger: pino({ level: 'silent' }), rateLimits: false, corsOrigins: [ORIGIN], leanRoutes, ...deps(leanRoutes) },
      ctx.services,
    );
  let leanApp: http.RequestListener | undefined;
  let expressApp: http.RequestListener | undefined;
  const lean = served((req, res) => (leanApp ??= appWith(true))(req, res));
  const viaExpress = served((req, res) => (expressApp ??= appWith(false))(req, res));
  afterAll(async () => {
    await lean.close();
    await viaExpress.close();
  });
  return { lean, viaExpress };
}

type Apps = ReturnType<typeof leanAndExpressApps>;

/**
 * The header middleware's cases: CORS configured, for a request without an Origin and one from an
 * allowed origin; and none configured, where a lean answer's head is written in one go.
 */
const configurations = (withCors: Apps, noCors: Apps) =>
  [
    ['without an Origin', withCors, {}],
    ['from an allowed origin (CORS)', withCors, { Origin: ORIGIN }],
    ['with no CORS configured', noCors, {}],
  ] as const;

const maskedHeaders = (raw: string[]) =>
  raw.map((value, i) => (i % 2 === 1 && /^(date|x-request-id)$/i.test(raw[i - 1]) ? '…' : value));

/** Opens a stream: its status, headers and first chunk; then lets it go. */
function openStream(base: string, path: string, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { headers, agent: false }, (res) => {
      const answer = (body: string) => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: maskedHeaders(res.rawHeaders), body });
      };
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        return res.on('end', () => answer(Buffer.concat(chunks).toString('utf8')));
      }
      res.once('data', (chunk: Buffer) => answer(chunk.toString('utf8')));
    });
    req.on('error', reject);
    req.end();
  });
}

function request(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: maskedHeaders(res.rawHeaders), body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The answer with what differs between two notifications (ids, times, hence the ETag) masked. */
function masked(answer: RawAnswer): RawAnswer {
  const body = answer.body
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>');
  const headers = answer.headers.map((value, i) => (i % 2 === 1 && answer.headers[i - 1] === 'ETag' ? '<etag>' : value));
  return { ...answer, headers, body };
}

const etagOf = (answer: RawAnswer) => answer.headers[answer.headers.indexOf('ETag') + 1];

it("tags a body with express's weak ETag (its etag package), whatever its characters and length", () => {
  for (const body of ['{}', '{"message":"é 日本 🎉"}', JSON.stringify({ long: 'x'.repeat(100_000) }), '"\\u0000"']) {
    expect(weakEtag(body, Buffer.byteLength(body))).toBe(etag(body, { weak: true }));
  }
});

it('serves before express only GETs, of routes that read no query and answer JSON, for any signed-in user', () => {
  const c = initContract();
  const handler = async () => ({ status: 200, body: {} }) as never;
  expect(() => leanContractGet(contract.notifications.list, handler, true)).toThrow(/reads a query/);
  expect(() => leanContractGet({ ...contract.auth.me, responses: { 204: c.noBody() } }, handler, true)).toThrow(/not JSON/);
  expect(() => leanContractGet({ ...contract.auth.me, responses: { 200: c.otherResponse({ contentType: 'text/csv', body: c.type<string>() }) } }, handler, true)).toThrow(/not JSON/);
  const deps = { sessions: {} as never, logger: pino({ level: 'silent' }), track: () => {}, headers: [], deadline: new RequestDeadline(1000, []) };
  expect(() => leanRoutes(deps, [leanContractGet(contract.featureFlags.get, handler, true)])).toThrow(/not for any signed-in user/);
  expect(() => leanRoutes(deps, [leanContractGet(contract.health.live, handler, true)])).toThrow(/not for any signed-in user/);
  expect(() => leanRoutes(deps, [{ ...leanContractGet(contract.auth.me, handler, true), route: contract.auth.replaceMe }])).toThrow(/only GETs/);
});

describeApi('lean routes answer as the express routes do', (ctx) => {
  const withCors = leanAndExpressApps(ctx);
  const { lean, viaExpress } = withCors;
  const noCors = leanAndExpressApps(ctx, () => ({ corsOrigins: [] }));

  let user: TestUser;
  beforeAll(async () => {
    user = await ctx.createUser();
  });
  const poll = (base: string, query: string, headers: Record<string, string> = {}) =>
    request(base, `${POLL}${query}`, { headers: { Authorization: `Token ${user.token}`, ...headers } });

  for (const [name, apps, headers] of configurations(withCors, noCors)) {
    it(`gives the same timeout answer to the byte, ${name}`, async () => {
      const [fromLean, fromExpress] = await Promise.all([poll(apps.lean.url(), '?timeout=1', headers), poll(apps.viaExpress.url(), '?timeout=1', headers)]);
      expect(fromLean.status).toBe(200);
      expect(JSON.parse(fromLean.body)).toMatchObject({ status: 'timeout' });
      expect(fromLean).toEqual(fromExpress);
    });

    it(`gives the same answer carrying a notification, ${name}`, async () => {
      // Not ASCII: the length and the ETag count UTF-8 bytes.
      const message = 'one — é 日本 🎉';
      await ctx.services.notifications.notify([user.id], { type: 'INFO', message });
      const fromLean = await poll(apps.lean.url(), '?timeout=5', headers);
      await ctx.services.notifications.notify([user.id], { type: 'INFO', message });
      const fromExpress = await poll(apps.viaExpress.url(), '?timeout=5', headers);
      expect(JSON.parse(fromLean.body)).toMatchObject({ status: 'immediate', notifications: [{ message }] });
      expect(masked(fromLean)).toEqual(masked(fromExpress));
      expect(etagOf(fromLean)).toBe(etag(Buffer.from(fromLean.body), { weak: true }));
    });

    it(`opens the same stream, ${name}`, async () => {
      const streamHeaders = { Authorization: `Token ${user.token}`, ...headers };
      const fromLean = await openStream(apps.lean.url(), SSE, streamHeaders);
      const fromExpress = await openStream(apps.viaExpress.url(), SSE, streamHeaders);
      expect(fromLean.status).toBe(200);
      expect(fromLean.body).toMatch(/^retry: \d+\n\n/);
      expect(fromLean).toEqual(fromExpress);
      await until(() => ctx.services.hub.stats().connections === 0, 'both streams to close');
    });
  }

  it('waits 30 s for a poll that names no timeout, on either path (the contract default)', async () => {
    const waits = vi.spyOn(ctx.services.longPoll, 'wait');
    try {
      for (const base of [lean.url(), viaExpress.url()]) {
        // Something waiting, so that the poll answers at once: only the wait it asked for matters.
        await ctx.services.notifications.notify([user.id], { type: 'INFO', message: 'answered at once' });
        const answer = await poll(base, '');
        expect(JSON.parse(answer.body)).toMatchObject({ status: 'immediate' });
      }
      expect(waits.mock.calls.map(([userId, timeoutMs]) => [userId, timeoutMs])).toEqual([
        [user.id, 30_000],
        [user.id, 30_000],
      ]);
    } finally {
      waits.mockRestore();
    }
  });

  it('answers a database failure as the error handler does (503, Retry-After)', async () => {
    const unreachable = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const take = vi.spyOn(ctx.services.claims, 'take').mockImplementation(unreachable);
    try {
      const fromLean = await poll(lean.url(), '?timeout=1');
      const fromExpress = await poll(viaExpress.url(), '?timeout=1');
      expect(fromLean.status).toBe(503);
      expect(fromLean.headers).toContain('Retry-After');
      expect(fromLean).toEqual(fromExpress);
    } finally {
      take.mockRestore();
    }
    const received = vi.spyOn(ctx.services.notifications, 'markReceived').mockImplementation(unreachable);
    try {
      // A stream that says which event it had marks it received before the head is written.
      const streamHeaders = { Authorization: `Token ${user.token}`, 'Last-Event-ID': '00000000-0000-4000-8000-000000000000' };
      const fromLean = await openStream(lean.url(), SSE, streamHeaders);
      const fromExpress = await openStream(viaExpress.url(), SSE, streamHeaders);
      expect(fromLean.status).toBe(503);
      expect(fromLean).toEqual(fromExpress);
    } finally {
      received.mockRestore();
    }
  });
});

describeApi('hot reads served before express answer as the express routes do', (ctx) => {
  // As above: two apps on the same services, one serving the hot reads before express. A short
  // deadline, and a log of their own, for the request that outlives it.
  const DEADLINE_MS = 300;
  const lines: Array<{ msg: string; app: string }> = [];
  const withCors = leanAndExpressApps(ctx, (leanRoutes) => ({
    logger: pino({ level: 'warn', base: { app: leanRoutes ? 'lean' : 'express' } }, { write: (line: string) => void lines.push(JSON.parse(line)) }),
    requestDeadlineMs: DEADLINE_MS,
  }));
  const noCors = leanAndExpressApps(ctx, () => ({ corsOrigins: [] }));

  let user: TestUser;
  let flagKey: string;
  beforeAll(async () => {
    user = await ctx.createUser({ firstName: 'Zoë 日本' });
    const admin = await ctx.createUser({ admin: true });
    const flag = await ctx.http.post('/api/feature-flags/flags/').set(admin.auth).send({ name: 'Hot read flag', is_enabled: true }).expect(201);
    flagKey = flag.body.key;
    await ctx.http.post(`/api/feature-flags/flags/${flagKey}/users/`).set(admin.auth).send({ user_ids: [user.id] }).expect(200);
    await ctx.services.notifications.notify([user.id], { type: 'INFO', message: 'unread' });
  });
  const both = (path: string, headers: Record<string, string>, apps: Apps = withCors) =>
    Promise.all([apps.lean.url(), apps.viaExpress.url()].map((base) => request(base, path, { headers: { Authorization: `Token ${user.token}`, ...headers } })));

  for (const [name, apps, headers] of configurations(withCors, noCors)) {
    it(`gives the same answers to the byte, found and not found, ${name}`, async () => {
      const reads: Array<[string, number]> = [
        ['/auth/users/me/', 200],
        ['/api/feature-flags/user-features/my_features/', 200],
        [`/api/feature-flags/user-features/${flagKey}/check/`, 200],
        // The handler's own 404 body, and a domain error (no timer runs) through the error handler.
        ['/api/feature-flags/user-features/no-such-flag/check/', 404],
        ['/api/time_entries/current_active/', 404],
        ['/api/notifications/unread-count/', 200],
      ];
      for (const [path, status] of reads) {
        const [fromLean, fromExpress] = await both(path, headers, apps);
        expect(fromLean.status, path).toBe(status);
        expect(fromLean, path).toEqual(fromExpress);
      }
      expect(JSON.parse((await both('/api/notifications/unread-count/', headers))[0].body)).toEqual({ unread: 1 });
    });
  }

  it('answers a database failure as the error handler does (503, Retry-After)', async () => {
    const unreachable = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const count = vi.spyOn(ctx.services.notifications, 'unreadCount').mockImplementation(unreachable);
    try {
      const [fromLean, fromExpress] = await both('/api/notifications/unread-count/', {});
      expect(fromLean.status).toBe(503);
      expect(fromLean.headers).toContain('Retry-After');
      expect(fromLean).toEqual(fromExpress);
    } finally {
      count.mockRestore();
    }
  });

  it('answers a read past its deadline as express does, drops its late end, and serves on', async () => {
    const ends: Array<Promise<unknown>> = [];
    const real = ctx.services.featureFlags.myFeatures.bind(ctx.services.featureFlags);
    const slow = vi.spyOn(ctx.services.featureFlags, 'myFeatures').mockImplementation((...args) => {
      const late = new Promise((resolve) => setTimeout(resolve, DEADLINE_MS * 3)).then(() => real(...args));
      ends.push(late);
      return late as ReturnType<typeof real>;
    });
    try {
      const [fromLean, fromExpress] = await both('/api/feature-flags/user-features/my_features/', {});
      expect(fromLean.status).toBe(503);
      expect(JSON.parse(fromLean.body)).toEqual({ detail: expect.stringMatching(/could not be answered within 0.3 s/) });
      expect(fromLean).toEqual(fromExpress);
      await Promise.all(ends);
    } finally {
      slow.mockRestore();
    }
    await until(() => lines.filter((line) => line.msg === 'late end of a request answered by its deadline').length === 2, 'both late ends to be logged');
    expect(lines.filter((line) => line.msg === 'late end of a request answered by its deadline').map((line) => line.app).sort()).toEqual(['express', 'lean']);
    const [again] = await both('/api/feature-flags/user-features/my_features/', {});
    expect(again.status).toBe(200);
  });
});

describeApi('what the lean routes leave to express', (ctx) => {
  // The lean routes in front of an express app that only says it was asked: 418 means "express's".
  let services: Services;
  const toExpress = express();
  const track = useRequestLogging(toExpress, pino({ level: 'silent' }));
  toExpress.use((_req, res) => void res.status(418).json({ served: 'express' }));
  const server = served((req, res) => toExpress(req, res));
  afterAll(() => server.close());
  let user: TestUser;
  beforeAll(async () => {
    // Services of their own (with their own bus: notifications for these polls are made through
    // them): a session cache that has seen no token yet.
    const deps: AppDependencies = { store: ctx.database.store, logger: pino({ level: 'silent' }), rateLimits: false };
    services = createServices(deps);
    const routes = [
      ...notificationLeanRoutes({ ...services, checkAnswers: true }),
      leanContractGet(contract.auth.me, authRouter(services.auth, services.sessions).me, true),
      leanContractGet(contract.featureFlags.check, featureFlagsRouter(services.featureFlags).check, true),
    ] as LeanRoute[];
    const deadline = new RequestDeadline(REQUEST_DEADLINE_MS, ROUTES_THAT_WAIT);
    serveBeforeExpress(toExpress, leanRoutes({ sessions: services.sessions, logger: deps.logger, track, headers: [securityHeaders()], deadline }, routes));
    user = await ctx.createUser();
  });
  afterAll(() => services.hub.close());
  const auth = () => ({ Authorization: `Token ${user.token}` });
  const ask = (path: string, headers: Record<string, string> = auth(), method = 'GET') => request(server.url(), path, { method, headers });

  it('serves the plain request, its token checked in the database the first time', async () => {
    expect(services.sessions.knownSession(auth().Authorization)).toBeUndefined();
    const first = await ask(`${POLL}?timeout=1`);
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({ status: 'timeout' });
    for (const query of ['', '?']) {
      await services.notifications.notify([user.id], { type: 'INFO', message: 'default timeout' });
      const answer = await ask(`${POLL}${query}`);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ status: 'immediate' });
    }
  });

  it.each([
    ['HEAD', `${POLL}?timeout=1`, 'HEAD'],
    ['POST', `${POLL}?timeout=1`, 'POST'],
    ['the path without its trailing slash', '/api/notifications/long-poll?timeout=1', 'GET'],
    ['the path in capitals', '/API/NOTIFICATIONS/LONG-POLL/?timeout=1', 'GET'],
    ['a percent-escaped path', '/api/notifications/long%2Dpoll/?timeout=1', 'GET'],
    ['another query parameter', `${POLL}?timeout=1&x=1`, 'GET'],
    ['a timeout of 0', `${POLL}?timeout=0`, 'GET'],
    ['a timeout of 61', `${POLL}?timeout=61`, 'GET'],
    ['a timeout that is not a whole number', `${POLL}?timeout=1.5`, 'GET'],
    ['a timeout given twice', `${POLL}?timeout=1&timeout=2`, 'GET'],
    ['a percent-escaped timeout', `${POLL}?timeout=%31`, 'GET'],
  ])('leaves %s to express', async (_name, path, method) => {
    // Twice: the second time the lean route answers from what it made of the query the first time.
    for (const time of ['first', 'second']) expect((await ask(path, auth(), method)).status, time).toBe(418);
  });

  it('serves the plain hot reads, and leaves any other to express', async () => {
    expect((await ask('/auth/users/me/')).status).toBe(200);
    // The handler's own 404: served here, not by express.
    expect((await ask(`${CHECK}a-b_c.d~e/check/`)).status).toBe(404);
    const leftToExpress: Array<[string, string, Record<string, string>?, string?]> = [
      ['HEAD', '/auth/users/me/', auth(), 'HEAD'],
      ['the path without its trailing slash', '/auth/users/me'],
      ['the path in capitals', '/AUTH/users/me/'],
      ['a query string', '/auth/users/me/?x=1'],
      ['a conditional GET', '/auth/users/me/', { ...auth(), 'If-None-Match': 'W/"x"' }],
      ['no token', '/auth/users/me/', {}],
      ['an unknown token', '/auth/users/me/', { Authorization: 'Token 0123456789abcdef' }],
      ['a percent-escaped parameter', `${CHECK}%61bc/check/`],
      ['an empty parameter', `${CHECK}/check/`],
      ['a parameter its schema refuses', `${CHECK}${'k'.repeat(201)}/check/`],
      ['a parameter of two segments', `${CHECK}a/b/check/`],
      ['a query string after a parameter', `${CHECK}abc/check/?x=1`],
    ];
    for (const [name, path, headers = auth(), method = 'GET'] of leftToExpress) {
      expect((await ask(path, headers, method)).status, name).toBe(418);
    }
  });

  it('serves the plain stream, and leaves any other to express', async () => {
    expect((await openStream(server.url(), SSE, auth())).status).toBe(200);
    for (const path of [`${SSE}?x=1`, '/api/notifications/sse', '/api/notifications/SSE/']) {
      expect((await openStream(server.url(), path, auth())).status, path).toBe(418);
    }
    expect((await ask(SSE, auth(), 'HEAD')).status).toBe(418);
    expect((await openStream(server.url(), SSE, { Authorization: 'Token 0123456789abcdef' })).status).toBe(418);
  });

  it('leaves a conditional GET, a missing and an unknown token to express', async () => {
    expect((await ask(`${POLL}?timeout=1`, { ...auth(), 'If-None-Match': 'W/"x"' })).status).toBe(418);
    expect((await ask(`${POLL}?timeout=1`, {})).status).toBe(418);
    expect((await ask(`${POLL}?timeout=1`, { Authorization: 'Token 0123456789abcdef' })).status).toBe(418);
    expect((await ask(`${POLL}?timeout=1`, { Authorization: 'Bearer x' })).status).toBe(418);
  });

  it("leaves a poll beyond the user's cap to express (which answers 429)", async () => {
    const cap = REALTIME_DEFAULTS.maxConnectionsPerUser;
    const waiting = Array.from({ length: cap }, () => ask(`${POLL}?timeout=3`));
    await until(() => services.hub.stats().connections === cap, `${cap} polls to wait`);
    expect((await ask(`${POLL}?timeout=1`)).status).toBe(418);
    expect((await Promise.all(waiting)).map((answer) => answer.status)).toEqual(Array(cap).fill(200));
  });
});

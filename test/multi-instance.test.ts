import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp, createServices, type RealtimeOptions, type Services } from '../server/app';
import type { Wakeup } from '../server/realtime/bus';
import { sharedRedis } from '../server/limits/shared-redis';
import { RedisBus } from '../server/realtime/redis-bus';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { RedisServer } from './support/redis-server';

const DATABASE_URL = process.env.TEST_DATABASE_URL;
const REDIS_URL = process.env.TEST_REDIS_URL;
const logger = pino({ level: 'silent' });
const PASSWORD = 'correct horse battery staple';

// Several instances only share notifications through a database they all open (Postgres) and a
// Redis bus: without TEST_DATABASE_URL and TEST_REDIS_URL there is nothing to run these against.
// Skipped then, never passed: global-setup prints the skipped suites and fails the run when CI=true.
describe.skipIf(!DATABASE_URL || !REDIS_URL)('several instances on one Postgres database and one Redis', () => {
  let database: TestDatabase;
  const instances: Instance[] = [];
  /** Stores opened on the test database besides its own (which drop() closes). */
  const extraStores: Store[] = [];
  const buses: RedisBus[] = [];
  const redisClients: Redis[] = [];
  /** redis-servers of this file's own (stopped after it). */
  const ownRedis: RedisServer[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
  });

  afterAll(async () => {
    try {
      for (const instance of instances) instance.services.hub.close();
      await Promise.allSettled(instances.map((instance) => closeServer(instance.server)));
      await Promise.allSettled(buses.map((bus) => bus.close()));
      for (const client of redisClients) client.disconnect();
      await Promise.allSettled(extraStores.map((store) => store.close()));
    } finally {
      await Promise.allSettled(ownRedis.map((server) => server.stop()));
      await database?.drop();
    }
  });

  async function startInstance(
    name: string,
    redisUrl: string,
    realtime?: Partial<RealtimeOptions>,
    busLogger: Logger = logger,
    busOptions: { healthCheckMs?: number } = {},
    stateRedisUrl = redisUrl,
  ): Promise<Instance> {
    // The first instance uses the test database's own store; every other opens the same database again.
    const store = instances.length === 0 ? database.store : await openDatabase(database.url);
    if (store !== database.store) extraStores.push(store);
    const bus = await RedisBus.connect(redisUrl, busLogger, busOptions);
    buses.push(bus);
    // Shared state (login failure and write counts), as main.ts sets it up.
    const redis = sharedRedis(stateRedisUrl, logger);
    redisClients.push(redis);
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
    const deps = { store, logger, rateLimits: true, bus, redis, realtime };
    const services = createServices(deps);
    const server = createApp(deps, services).listen(0, '127.0.0.1');
    const instance: Instance = { name, store, bus, services, server, base: '' };
    instances.push(instance);
    if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
    instance.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return instance;
  }

  describe('on the shared Redis', () => {
    let a: Instance;
    let b: Instance;
    let user: User;

    beforeAll(async () => {
      // The bus on the shared Redis; the counters on a Redis of our own that starts empty: failed
      // logins from 127.0.0.1 count for 15 minutes, and earlier runs' would lock this one out.
      const counters = await RedisServer.start();
      ownRedis.push(counters);
      a = await startInstance('A', REDIS_URL!, undefined, logger, {}, counters.url);
      b = await startInstance('B', REDIS_URL!, undefined, logger, {}, counters.url);
      user = await registerUser(a);
    });

    it('serves two instances with their own ports, buses and stores on one database', async () => {
      expect(a.base).not.toBe(b.base);
      expect(a.store).not.toBe(b.store);
      expect(a.bus.healthy).toBe(true);
      expect(b.bus.healthy).toBe(true);
      // The token issued by A authenticates on B: both read the one database.
      const me = await call(b, user, 'GET', '/auth/users/me/');
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ id: user.id, username: user.username });
    });

    it('counts failed logins for a username across instances', async () => {
      const target = await registerUser(a);
      const attempt = (instance: Instance, password: string) =>
        call(instance, undefined, 'POST', '/auth/token/login/', { username: target.username, password });
      // 10 failures, half on each instance: each instance alone has seen only 5.
      for (let i = 0; i < 10; i++) expect((await attempt(i % 2 ? b : a, `wrong password ${i}`)).status).toBe(400);
      for (const instance of [a, b]) {
        const refused = await attempt(instance, PASSWORD);
        expect(refused.status).toBe(429);
        expect(Number(refused.retryAfter)).toBeGreaterThan(0);
      }
    });

    it('answers a long-poll waiting on B within a second of a notification created on A', async () => {
      const poll = await startLongPoll(b, user, 10);
      const created = await createTestNotification(a, user, 'long-poll across instances');
      const answer = await poll.answer;
      const elapsed = answer.at - created.startedAt;

      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe('new_notification');
      expect(answer.body.has_new_notifications).toBe(true);
      expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
      expect(answer.body.notifications[0]).toMatchObject({ message: 'long-poll across instances', type: 'INFO' });
      expect(elapsed).toBeLessThan(1000);

      // Marked delivered once the answer was written; A reads the same row.
      const delivered = await waitForDelivered(a, user, created.id);
      expect(delivered.delivered_at).toEqual(expect.any(String));
      expect(await undeliveredCount(a, user)).toBe(0);
    });

    it('sends an event on an SSE stream open on B within a second of a notification created on A', async () => {
      const stream = await openStream(b, user);
      try {
        const created = await createTestNotification(a, user, 'stream across instances');
        const event = await stream.nextEvent(5000);
        const elapsed = event.at - created.startedAt;

        expect(event.id).toBe(created.id);
        expect(event.data).toMatchObject({ id: created.id, message: 'stream across instances', type: 'INFO' });
        expect(elapsed).toBeLessThan(1000);
        const delivered = await waitForDelivered(a, user, created.id);
        expect(delivered.delivered_at).toEqual(expect.any(String));
      } finally {
        stream.close();
      }
      expect(await undeliveredCount(b, user)).toBe(0);
    });
  });

  describe('when Redis stops and starts again', () => {
    let c: Instance;
    let d: Instance;
    let redis: RedisServer;
    /** What C's bus logged at warn level and above. */
    const busWarnings: string[] = [];

    beforeAll(async () => {
      // Our own redis-server: the shared one on TEST_REDIS_URL serves other test files.
      redis = await RedisServer.start();
      ownRedis.push(redis);
      const warningsLogger = pino({ level: 'warn' }, { write: (line: string) => void busWarnings.push(JSON.parse(line).msg) });
      c = await startInstance('C', redis.url, { fallbackPollMs: 300 }, warningsLogger, { healthCheckMs: 300 });
      d = await startInstance('D', redis.url, { fallbackPollMs: 300 }, logger, { healthCheckMs: 300 });
    });

    it('delivers through fallback polling during the outage and quickly again once Redis is back', async () => {
      const polling = await registerUser(c);
      const streaming = await registerUser(c);
      expect(c.bus.healthy).toBe(true);
      expect(d.bus.healthy).toBe(true);
      const stream = await openStream(d, streaming);
      try {
        // Redis crashes: both buses notice, their hubs fall back to reading the database.
        await redis.stop();
        await waitFor(() => !c.bus.healthy && !d.bus.healthy, 5000, 'both buses to report Redis down');

        const poll = await startLongPoll(d, polling, 10);
        const duringOutage = await createTestNotification(c, polling, 'created while Redis is down');
        const answer = await poll.answer;
        expect(answer.status).toBe(200);
        expect(answer.body.status).toBe('new_notification');
        expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([duringOutage.id]);
        expect(answer.at - duringOutage.startedAt).toBeLessThan(3000);

        const streamedDuringOutage = await createTestNotification(c, streaming, 'streamed while Redis is down');
        const outageEvent = await stream.nextEvent(5000);
        expect(outageEvent.id).toBe(streamedDuringOutage.id);
        expect(outageEvent.at - streamedDuringOutage.startedAt).toBeLessThan(3000);

        // Created while nobody waits: it must still be there to deliver after the outage.
        const unwaited = await createTestNotification(c, polling, 'nobody was waiting');
        await waitForDelivered(d, polling, duringOutage.id);
        expect(await undeliveredCount(d, polling)).toBe(1);

        // Redis is back on the same port: ioredis reconnects both buses by itself.
        await redis.start();
        await waitFor(() => c.bus.healthy && d.bus.healthy, 10_000, 'both buses to reconnect to Redis');
        expect(c.bus.healthy && d.bus.healthy).toBe(true);

        const catchUp = await call(d, polling, 'GET', '/api/notifications/long-poll/?timeout=5');
        expect(catchUp.body.status).toBe('immediate');
        expect(catchUp.body.notifications.map((n: { id: string }) => n.id)).toEqual([unwaited.id]);

        const nextPoll = await startLongPoll(d, polling, 10);
        const afterOutage = await createTestNotification(c, polling, 'created after Redis is back');
        const nextAnswer = await nextPoll.answer;
        expect(nextAnswer.body.status).toBe('new_notification');
        expect(nextAnswer.body.notifications.map((n: { id: string }) => n.id)).toEqual([afterOutage.id]);
        expect(nextAnswer.at - afterOutage.startedAt).toBeLessThan(1000);

        const streamedAfter = await createTestNotification(c, streaming, 'streamed after Redis is back');
        const afterEvent = await stream.nextEvent(5000);
        expect(afterEvent.id).toBe(streamedAfter.id);
        expect(afterEvent.at - streamedAfter.startedAt).toBeLessThan(1000);

        // Nothing from before, during or after the outage is left undelivered.
        for (const id of [duringOutage.id, unwaited.id, afterOutage.id]) await waitForDelivered(c, polling, id);
        for (const id of [streamedDuringOutage.id, streamedAfter.id]) await waitForDelivered(c, streaming, id);
        const status = await call(c, polling, 'GET', '/api/notifications/delivery-status/');
        expect(status.body).toMatchObject({ total: 3, delivered: 3, undelivered: 0, undelivered_notifications: [] });
        const streamStatus = await call(d, streaming, 'GET', '/api/notifications/delivery-status/');
        expect(streamStatus.body).toMatchObject({ total: 2, delivered: 2, undelivered: 0 });
      } finally {
        stream.close();
      }
    });

    it('publishes a wake-up again when only the publishing connection dropped while it was sent', async () => {
      await redis.start(); // a no-op unless the test before left it stopped
      await waitFor(() => c.bus.healthy && d.bus.healthy, 10_000, 'both buses to be connected to Redis');
      const user = await registerUser(c);
      const poll = await startLongPoll(d, user, 5);
      const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      admin.on('error', () => {});
      try {
        // Drops the 'normal' connections — each instance's publisher and its shared-state client —
        // not the subscribers' (pub/sub): every bus still reports itself healthy, so no hub falls
        // back to polling the database.
        expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal')).toBe(4);
      } finally {
        admin.disconnect();
      }
      await new Promise((resolve) => setTimeout(resolve, 30)); // the publishers see their socket close
      const warningsBefore = busWarnings.length;
      const created = await createTestNotification(c, user, 'published while the publisher reconnects');
      // The publish really failed, and nothing told D's hub to poll.
      expect(busWarnings.slice(warningsBefore)).toContainEqual(expect.stringMatching(/redis publish failed/));
      expect(c.bus.healthy && d.bus.healthy).toBe(true);

      const answer = await poll.answer;
      expect(answer.body.status).toBe('new_notification');
      expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
      expect(answer.at - created.startedAt).toBeLessThan(1000);
      await waitForDelivered(c, user, created.id);
      expect(await undeliveredCount(c, user)).toBe(0);
    });

    it('answers a create in bounded time while Redis hangs, and delivers once Redis answers again', async () => {
      await redis.start();
      await waitFor(() => c.bus.healthy && d.bus.healthy, 10_000, 'both buses to be connected to Redis');
      const user = await registerUser(c);
      const poll = await startLongPoll(d, user, 10);
      redis.pause();
      try {
        const warningsBefore = busWarnings.length;
        const created = await createTestNotification(c, user, 'created while Redis hangs');
        // The request waits for the publish at most its timeout, not until Redis answers.
        expect(Date.now() - created.startedAt).toBeLessThan(2500);
        expect(busWarnings.slice(warningsBefore)).toContainEqual(expect.stringMatching(/redis publish failed/));
        const resumedAt = Date.now();
        redis.resume();
        const answer = await poll.answer;
        expect(answer.body.status).toBe('new_notification');
        expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
        expect(answer.at - resumedAt).toBeLessThan(1000);
        await waitForDelivered(c, user, created.id);
      } finally {
        redis.resume();
      }
    });

    it('counts a Redis that stops answering as down, and delivers through the database meanwhile', async () => {
      await redis.start();
      await waitFor(() => c.bus.healthy && d.bus.healthy, 10_000, 'both buses to be connected to Redis');
      const user = await registerUser(c);
      redis.pause();
      try {
        // The connections stay open; only unanswered PINGs tell that Redis is gone.
        await waitFor(() => !c.bus.healthy && !d.bus.healthy, 5000, 'both buses to notice that Redis hangs');
        const poll = await startLongPoll(d, user, 10);
        const created = await createTestNotification(c, user, 'delivered while Redis hangs');
        const answer = await poll.answer;
        expect(answer.body.status).toBe('new_notification');
        expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
        // Still frozen: the database, not Redis, carried it.
        expect(c.bus.healthy || d.bus.healthy).toBe(false);
        await waitForDelivered(c, user, created.id);
      } finally {
        redis.resume();
      }
      await waitFor(() => c.bus.healthy && d.bus.healthy, 5000, 'both buses to count Redis as back');
    });
  });
});

// The bus alone: no database needed, only the shared Redis.
describe.skipIf(!REDIS_URL)('RedisBus', () => {
  const buses: RedisBus[] = [];

  afterAll(async () => {
    await Promise.allSettled(buses.map((bus) => bus.close()));
  });

  it("carries a publish to the other instance and wakes the publisher's own listeners exactly once", async () => {
    const [one, two] = await Promise.all([RedisBus.connect(REDIS_URL!, logger), RedisBus.connect(REDIS_URL!, logger)]);
    buses.push(one, two);
    expect(one.healthy).toBe(true);
    expect(two.healthy).toBe(true);
    // Other test files publish on the same channel: only count the user ids made up here.
    const fromOne = uniqueUserId();
    const fromTwo = fromOne + 1;
    const heardByOne = record(one, [fromOne, fromTwo]);
    const heardByTwo = record(two, [fromOne, fromTwo]);

    await one.publish({ userIds: [fromOne] });
    expect(heardByOne).toEqual([fromOne]); // the local listener, woken directly
    await waitFor(() => heardByTwo.includes(fromOne), 2000, 'the other bus to hear the publish');

    // Redis delivers in order on each connection: once `one` hears `two`'s later message, the echo of
    // its own earlier one has come back to it too, and was ignored.
    await two.publish({ userIds: [fromTwo] });
    await waitFor(() => heardByOne.includes(fromTwo), 2000, 'the first bus to hear the second');
    expect(heardByOne).toEqual([fromOne, fromTwo]);
    expect(heardByTwo).toEqual([fromOne, fromTwo]);
  });
});

interface Instance {
  name: string;
  store: Store;
  bus: RedisBus;
  services: Services;
  server: Server;
  base: string;
}

interface User {
  id: number;
  username: string;
  token: string;
}

interface Answer {
  status: number;
  body: any;
  /** When the whole answer had arrived (Date.now()). */
  at: number;
  retryAfter: string | null;
}

async function call(instance: Instance, user: User | undefined, method: string, path: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (user) headers.Authorization = `Token ${user.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(instance.base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? JSON.parse(text) : undefined,
    at: Date.now(),
    retryAfter: response.headers.get('retry-after'),
  };
}

async function registerUser(instance: Instance): Promise<User> {
  const username = `multi_${randomBytes(5).toString('hex')}`;
  const registered = await call(instance, undefined, 'POST', '/auth/users/', { username, password: PASSWORD });
  expect(registered.status).toBe(201);
  const login = await call(instance, undefined, 'POST', '/auth/token/login/', { username, password: PASSWORD });
  expect(login.status).toBe(200);
  return { id: registered.body.id, username, token: login.body.auth_token };
}

async function createTestNotification(instance: Instance, user: User, message: string) {
  const startedAt = Date.now();
  const created = await call(instance, user, 'POST', '/api/notifications/test/', { message, type: 'INFO' });
  expect(created.status).toBe(201);
  return { id: created.body.id as string, startedAt };
}

/**
 * Starts a long-poll and resolves once it is waiting in the instance's hub, so that what the test
 * creates next has to wake it (and does not just show up in its first read).
 */
async function startLongPoll(instance: Instance, user: User, timeoutSeconds: number): Promise<{ answer: Promise<Answer> }> {
  const before = instance.services.hub.stats().subscribers;
  const answer = call(instance, user, 'GET', `/api/notifications/long-poll/?timeout=${timeoutSeconds}`);
  answer.catch(() => {});
  await waitFor(() => instance.services.hub.stats().subscribers > before, 5000, `a long-poll waiting on ${instance.name}`);
  await settle();
  return { answer };
}

interface StreamEvent {
  id: string;
  data: Record<string, unknown>;
  at: number;
}

/** Opens an SSE stream and resolves once it is subscribed in the instance's hub. */
async function openStream(instance: Instance, user: User) {
  const before = instance.services.hub.stats().subscribers;
  const controller = new AbortController();
  const response = await fetch(`${instance.base}/api/notifications/sse/`, {
    headers: { Authorization: `Token ${user.token}`, Accept: 'text/event-stream' },
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: StreamEvent[] = [];
  let buffer = '';
  let ended = false;
  let notify: (() => void) | undefined;
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block.split('\n').filter((line) => line && !line.startsWith(':')).map((line) => {
              const colon = line.indexOf(':');
              return [line.slice(0, colon), line.slice(colon + 1).trimStart()];
            }),
          );
          if (fields.id && fields.data) events.push({ id: fields.id, data: JSON.parse(fields.data), at: Date.now() });
          notify?.();
        }
      }
    } catch {
      // aborted by close()
    } finally {
      ended = true;
      notify?.();
    }
  })();
  await waitFor(() => instance.services.hub.stats().subscribers > before, 5000, `an SSE stream open on ${instance.name}`);
  await settle();
  return {
    async nextEvent(timeoutMs: number): Promise<StreamEvent> {
      const deadline = Date.now() + timeoutMs;
      while (events.length === 0) {
        if (ended) throw new Error('the SSE stream ended before the next event');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no SSE event within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          notify = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        notify = undefined;
      }
      return events.shift()!;
    },
    close: () => controller.abort(),
  };
}

async function waitForDelivered(instance: Instance, user: User, id: string) {
  let last: Answer | undefined;
  await waitFor(
    async () => {
      last = await call(instance, user, 'GET', `/api/notifications/${id}/`);
      return last.status === 200 && last.body.delivered === true;
    },
    5000,
    `notification ${id} to be marked delivered`,
  );
  return last!.body;
}

async function undeliveredCount(instance: Instance, user: User): Promise<number> {
  const status = await call(instance, user, 'GET', '/api/notifications/delivery-status/');
  expect(status.status).toBe(200);
  return status.body.undelivered;
}

function record(bus: RedisBus, userIds: number[]): number[] {
  const heard: number[] = [];
  bus.subscribe((wakeup: Wakeup) => {
    if ('userIds' in wakeup) heard.push(...wakeup.userIds.filter((id) => userIds.includes(id)));
  });
  return heard;
}

const uniqueUserId = () => 1_000_000_000 + randomBytes(3).readUIntBE(0, 3);

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Lets a just-subscribed waiter finish its first (empty) database read. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp, createServices, type RealtimeOptions, type Services } from '../server/app';
import type { BusMessage } from '../server/realtime/bus';
import { sharedRedis } from '../server/limits/shared-redis';
import { RedisBus } from '../server/realtime/redis-bus';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { watchReads, type ReadWatch } from './support/notification-fixtures';
import { RedisServer } from './support/redis-server';
import { SLACK_MS, until } from './support/waiting';

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
    // Its tests register many users over HTTP from one address.
    const deps = { store, logger, rateLimits: true, bus, redis, realtime, registrationLimit: { perAddress: 10_000, windowSeconds: 3600 } };
    const services = createServices(deps);
    const server = createApp(deps, services).listen(0, '127.0.0.1');
    const instance: Instance = { name, store, bus, services, reads: watchReads(services.claims), server, base: '' };
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

    it('answers a long-poll waiting on B as soon as a notification is created on A', async () => {
      const poll = await startLongPoll(b, user, 20);
      const created = await createTestNotification(a, user, 'long-poll across instances');
      const answer = await poll.answer;
      const elapsed = answer.at - created.startedAt;

      // Only the bus can have woken it: B's bus is healthy, so B's hub does not poll the database.
      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe('new_notification');
      expect(answer.body.has_new_notifications).toBe(true);
      expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
      expect(answer.body.notifications[0]).toMatchObject({ message: 'long-poll across instances', type: 'INFO' });
      // Within milliseconds on an idle machine; the bound is only "not at the end of its 20 s".
      expect(elapsed).toBeLessThan(SLACK_MS);

      // Marked delivered once the answer was written; A reads the same row.
      const delivered = await waitForDelivered(a, user, created.id);
      expect(delivered.delivered_at).toEqual(expect.any(String));
      expect(await undeliveredCount(a, user)).toBe(0);
    });

    it('sends an event on an SSE stream open on B as soon as a notification is created on A', async () => {
      const stream = await openStream(b, user);
      try {
        const created = await createTestNotification(a, user, 'stream across instances');
        const event = await stream.nextEvent();
        const elapsed = event.at - created.startedAt;

        expect(event.id).toBe(created.id);
        expect(event.data).toMatchObject({ id: created.id, message: 'stream across instances', type: 'INFO' });
        // Only the bus can have woken it (see above); the bound is only "soon, not never".
        expect(elapsed).toBeLessThan(SLACK_MS);
        const delivered = await waitForDelivered(a, user, created.id);
        expect(delivered.delivered_at).toEqual(expect.any(String));
        stream.expectIntact();
      } finally {
        stream.close();
      }
      expect(await undeliveredCount(b, user)).toBe(0);
    });

    it('answers a long-poll waiting on B when POST delivery-status/ (retry) is asked on A', async () => {
      const poll = await startLongPoll(b, user, 20);
      const readsBefore = b.reads.count(user.id);
      // Written without a wake-up (as one whose wake-up Redis lost): B's poll, whose read found
      // nothing, stays asleep until someone announces it.
      const id = randomUUID();
      await a.store.insertAll(a.store.t.notifications, [
        { id, userId: user.id, type: 'INFO', message: 'announced by a retry on A', createdAt: new Date(), deliveredAt: null, readAt: null },
      ]);
      expect(b.reads.count(user.id)).toBe(readsBefore);

      const startedAt = Date.now();
      const retried = await call(a, user, 'POST', '/api/notifications/delivery-status/', { notification_ids: [id] });
      expect(retried.body).toEqual({ message: 'Retry initiated for 1 notifications', retry_count: 1 });
      const answer = await poll.answer;
      expect(answer.body).toMatchObject({ status: 'new_notification', notifications: [{ id, message: 'announced by a retry on A' }] });
      expect(answer.at - startedAt).toBeLessThan(SLACK_MS);
      await waitForDelivered(a, user, id);
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

    // Each test starts with Redis up and both buses connected, whatever the test before left.
    beforeEach(async () => {
      redis.resume();
      await redis.start();
      await waitFor(() => c.bus.healthy && d.bus.healthy, 20_000, 'both buses to be connected to Redis');
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
        await waitFor(() => !c.bus.healthy && !d.bus.healthy, 15_000, 'both buses to report Redis down');

        // Only D's fallback poll (every 300 ms here) can find these: no bus carries anything now.
        const poll = await startLongPoll(d, polling, 20);
        const duringOutage = await createTestNotification(c, polling, 'created while Redis is down');
        const answer = await poll.answer;
        expect(answer.status).toBe(200);
        expect(answer.body.status).toBe('new_notification');
        expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([duringOutage.id]);
        expect(answer.at - duringOutage.startedAt).toBeLessThan(300 + SLACK_MS);

        const streamedDuringOutage = await createTestNotification(c, streaming, 'streamed while Redis is down');
        const outageEvent = await stream.nextEvent();
        expect(outageEvent.id).toBe(streamedDuringOutage.id);
        expect(outageEvent.at - streamedDuringOutage.startedAt).toBeLessThan(300 + SLACK_MS);

        // Created while nobody waits: it must still be there to deliver after the outage.
        const unwaited = await createTestNotification(c, polling, 'nobody was waiting');
        await waitForDelivered(d, polling, duringOutage.id);
        expect(await undeliveredCount(d, polling)).toBe(1);

        // Redis is back on the same port: ioredis reconnects both buses by itself.
        await redis.start();
        await waitFor(() => c.bus.healthy && d.bus.healthy, 20_000, 'both buses to reconnect to Redis');

        const catchUp = await call(d, polling, 'GET', '/api/notifications/long-poll/?timeout=5');
        expect(catchUp.body.status).toBe('immediate');
        expect(catchUp.body.notifications.map((n: { id: string }) => n.id)).toEqual([unwaited.id]);

        // Healthy again, the hubs have stopped polling the database: the bus carries these.
        const nextPoll = await startLongPoll(d, polling, 20);
        const afterOutage = await createTestNotification(c, polling, 'created after Redis is back');
        const nextAnswer = await nextPoll.answer;
        expect(nextAnswer.body.status).toBe('new_notification');
        expect(nextAnswer.body.notifications.map((n: { id: string }) => n.id)).toEqual([afterOutage.id]);
        expect(nextAnswer.at - afterOutage.startedAt).toBeLessThan(SLACK_MS);

        const streamedAfter = await createTestNotification(c, streaming, 'streamed after Redis is back');
        const afterEvent = await stream.nextEvent();
        expect(afterEvent.id).toBe(streamedAfter.id);
        expect(afterEvent.at - streamedAfter.startedAt).toBeLessThan(SLACK_MS);

        // Nothing from before, during or after the outage is left undelivered.
        for (const id of [duringOutage.id, unwaited.id, afterOutage.id]) await waitForDelivered(c, polling, id);
        for (const id of [streamedDuringOutage.id, streamedAfter.id]) await waitForDelivered(c, streaming, id);
        const status = await call(c, polling, 'GET', '/api/notifications/delivery-status/');
        expect(status.body).toMatchObject({ total: 3, delivered: 3, undelivered: 0, undelivered_notifications: [] });
        const streamStatus = await call(d, streaming, 'GET', '/api/notifications/delivery-status/');
        expect(streamStatus.body).toMatchObject({ total: 2, delivered: 2, undelivered: 0 });
        stream.expectIntact();
      } finally {
        stream.close();
      }
    });

    it('publishes a wake-up again when only the publishing connection dropped while it was sent', async () => {
      const user = await registerUser(c);
      const poll = await startLongPoll(d, user, 15);
      const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      admin.on('error', () => {});
      const [, maxClients] = (await admin.config('GET', 'maxclients')) as [string, string];
      let created: { id: string; startedAt: number };
      try {
        // Redis takes no new connection while the test holds its limit at the connections that
        // stay: the dropped publishers cannot reconnect (ioredis tries again within 200 ms) before
        // the publish has been tried and has failed.
        const connected = String(await admin.call('CLIENT', 'LIST')).trim().split('\n').length;
        await admin.config('SET', 'maxclients', String(connected - 4));
        // Drops the 'normal' connections — each instance's publisher and its shared-state client —
        // not the subscribers' (pub/sub): every bus still reports itself healthy, so no hub falls
        // back to polling the database.
        expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal')).toBe(4);
        await until(() => publisherOf(c.bus).status !== 'ready', "C's publisher to see its connection gone");

        const warningsBefore = busWarnings.length;
        created = await createTestNotification(c, user, 'published while the publisher reconnects');
        // The publish really failed, and nothing told D's hub to poll.
        expect(busWarnings.slice(warningsBefore)).toContainEqual(expect.stringMatching(/redis publish failed/));
        expect(c.bus.healthy && d.bus.healthy).toBe(true);
      } finally {
        await admin.config('SET', 'maxclients', maxClients);
        admin.disconnect();
      }

      // The publisher reconnects and sends the wake-up again: nothing else could wake D's poll.
      const answer = await poll.answer;
      expect(answer.body.status).toBe('new_notification');
      expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
      await waitForDelivered(c, user, created.id);
      expect(await undeliveredCount(c, user)).toBe(0);
    });

    it('answers a create in bounded time while Redis hangs, and delivers once Redis answers again', async () => {
      const user = await registerUser(c);
      const poll = await startLongPoll(d, user, 20);
      redis.pause();
      try {
        const warningsBefore = busWarnings.length;
        const created = await createTestNotification(c, user, 'created while Redis hangs');
        // Redis is still frozen: the request waited for the publish its 1 s deadline, not until Redis answers.
        const elapsed = Date.now() - created.startedAt;
        expect(elapsed).toBeGreaterThanOrEqual(990);
        expect(elapsed).toBeLessThan(1000 + SLACK_MS);
        expect(busWarnings.slice(warningsBefore)).toContainEqual(expect.stringMatching(/redis publish failed/));
        redis.resume();
        const answer = await poll.answer;
        expect(answer.body.status).toBe('new_notification');
        expect(answer.body.notifications.map((n: { id: string }) => n.id)).toEqual([created.id]);
        await waitForDelivered(c, user, created.id);
      } finally {
        redis.resume();
      }
    });

    it('counts a Redis that stops answering as down, and delivers through the database meanwhile', async () => {
      const user = await registerUser(c);
      redis.pause();
      try {
        // The connections stay open; only unanswered PINGs tell that Redis is gone.
        await waitFor(() => !c.bus.healthy && !d.bus.healthy, 15_000, 'both buses to notice that Redis hangs');
        const poll = await startLongPoll(d, user, 20);
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
      await waitFor(() => c.bus.healthy && d.bus.healthy, 15_000, 'both buses to count Redis as back');
    });
  });
});

// The bus alone: no database needed, only the shared Redis.
describe.skipIf(!REDIS_URL)('RedisBus', () => {
  const buses: RedisBus[] = [];
  /** redis-servers of this suite's own (stopped after it). */
  const ownRedis: RedisServer[] = [];

  afterAll(async () => {
    await Promise.allSettled(buses.map((bus) => bus.close()));
    await Promise.allSettled(ownRedis.map((server) => server.stop()));
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
    await waitFor(() => heardByTwo.includes(fromOne), 10_000, 'the other bus to hear the publish');

    // Redis delivers in order on each connection: once `one` hears `two`'s later message, the echo of
    // its own earlier one has come back to it too, and was ignored.
    await two.publish({ userIds: [fromTwo] });
    await waitFor(() => heardByOne.includes(fromTwo), 10_000, 'the first bus to hear the second');
    expect(heardByOne).toEqual([fromOne, fromTwo]);
    expect(heardByTwo).toEqual([fromOne, fromTwo]);
  });

  it('carries feature-flag and user changes on channels of their own, and sends those that failed again once the publisher is back', async () => {
    // A redis-server of the test's own: other test files change flags on the shared one.
    const redis = await RedisServer.start();
    ownRedis.push(redis);
    const [one, two] = await Promise.all([RedisBus.connect(redis.url, logger), RedisBus.connect(redis.url, logger)]);
    buses.push(one, two);
    const heard: BusMessage[] = [];
    two.subscribe((message) => heard.push(message));
    // What an instance that knows only wake-ups hears: its channel, where a flag change never goes.
    const wakeupsOnly = new Redis(redis.url);
    wakeupsOnly.on('error', () => {});
    const onWakeupChannel: unknown[] = [];
    wakeupsOnly.on('message', (_channel: string, raw: string) => onWakeupChannel.push(JSON.parse(raw).wakeup));
    await wakeupsOnly.subscribe('punchclock:notifications');

    await one.publish({ flagsChanged: true });
    await waitFor(() => heard.length === 1, 10_000, 'the other bus to hear the flag change');
    expect(heard).toEqual([{ flagsChanged: true }]);

    publisherOf(one).disconnect();
    await waitFor(() => publisherOf(one).status === 'end', 10_000, 'the publisher to be closed');
    await one.publish({ flagsChanged: true });
    await one.publish({ userIds: [5] });
    await one.publish({ usersChanged: [7] });
    await one.publish({ flagsChanged: true });
    await one.publish({ usersChanged: [8, 7] });
    expect(heard).toHaveLength(1);
    await publisherOf(one).connect();
    // Kept while unsent: the flag changes as one message, the changed users and the wake-ups each merged into one.
    await waitFor(() => heard.length === 4, 10_000, 'the unsent messages to arrive');
    expect(heard).toEqual([{ flagsChanged: true }, { flagsChanged: true }, { usersChanged: [7, 8] }, { userIds: [5] }]);
    await waitFor(() => onWakeupChannel.length === 1, 10_000, 'the wake-up on its channel');
    expect(onWakeupChannel).toEqual([{ userIds: [5] }]);
    wakeupsOnly.disconnect();
  });

  it('PINGs Redis every 2 s and counts it down when a PING is not answered within 1 s (the defaults)', async () => {
    // A redis-server of the test's own, to freeze: the shared one serves other test files.
    const redis = await RedisServer.start();
    ownRedis.push(redis);
    // Only intervals are faked (the health check's): the connection and the PING's deadline run as they do.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const bus = await RedisBus.connect(redis.url, logger);
      buses.push(bus);
      expect(bus.healthy).toBe(true);
      const pings = vi.spyOn(subscriberOf(bus), 'ping');
      redis.pause();

      vi.advanceTimersByTime(1999);
      expect(pings).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(pings).toHaveBeenCalledTimes(1);
      const pingedAt = Date.now();
      await waitFor(() => !bus.healthy, 10_000, 'the bus to count the unanswered PING');
      const downAfter = Date.now() - pingedAt;
      expect(downAfter).toBeGreaterThanOrEqual(990);
      expect(downAfter).toBeLessThan(1000 + SLACK_MS);

      // Answered again at the next health check: back.
      redis.resume();
      vi.advanceTimersByTime(2000);
      expect(pings).toHaveBeenCalledTimes(2);
      await waitFor(() => bus.healthy, 10_000, 'the bus to count Redis as back');
    } finally {
      vi.useRealTimers();
      redis.resume();
    }
  });
});

interface Instance {
  name: string;
  store: Store;
  bus: RedisBus;
  services: Services;
  /** The reads of undelivered notifications its long-polls and streams have completed. */
  reads: ReadWatch;
  server: Server;
  base: string;
}

// The bus's connections are its own; the tests that need to watch them reach in.
const publisherOf = (bus: RedisBus) => (bus as unknown as { publisher: Redis }).publisher;
const subscriberOf = (bus: RedisBus) => (bus as unknown as { subscriber: Redis }).subscriber;

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
 * Starts a long-poll and resolves once it has done its first read and waits in the instance's hub,
 * so that what the test creates next has to wake it (and does not just show up in that read).
 */
async function startLongPoll(instance: Instance, user: User, timeoutSeconds: number): Promise<{ answer: Promise<Answer> }> {
  const before = instance.reads.count(user.id);
  const answer = call(instance, user, 'GET', `/api/notifications/long-poll/?timeout=${timeoutSeconds}`);
  answer.catch(() => {});
  await waitFor(() => instance.reads.count(user.id) > before, 15_000, `a long-poll waiting on ${instance.name}`);
  return { answer };
}

interface StreamEvent {
  id: string;
  data: Record<string, unknown>;
  at: number;
}

/**
 * Opens an SSE stream and resolves once it has done its first read and waits in the instance's hub.
 * A stream that breaks off (reset, or aborted by anything but close()) is a failure, not an end.
 */
async function openStream(instance: Instance, user: User) {
  const before = instance.reads.count(user.id);
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
  let closing = false;
  /** Why reading failed, when it did other than by close(). */
  let failure: unknown;
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
    } catch (error) {
      if (!closing) failure = error;
    } finally {
      ended = true;
      notify?.();
    }
  })();
  const expectIntact = () => {
    if (failure !== undefined) throw new Error('the SSE stream broke off', { cause: failure });
  };
  await waitFor(() => instance.reads.count(user.id) > before, 15_000, `an SSE stream open on ${instance.name}`);
  return {
    async nextEvent(timeoutMs = 15_000): Promise<StreamEvent> {
      const deadline = Date.now() + timeoutMs;
      while (events.length === 0) {
        expectIntact();
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
    /** Throws if the stream broke off (it has not been closed by the test, nor ended by the server). */
    expectIntact,
    close: () => {
      closing = true;
      controller.abort();
    },
  };
}

async function waitForDelivered(instance: Instance, user: User, id: string) {
  let last: Answer | undefined;
  await waitFor(
    async () => {
      last = await call(instance, user, 'GET', `/api/notifications/${id}/`);
      return last.status === 200 && last.body.delivered === true;
    },
    15_000,
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
  bus.subscribe((wakeup: BusMessage) => {
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

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

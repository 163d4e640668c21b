// The rate limits with REDIS_URL, on apps wired as server/main.ts wires them (sharedRedis for the
// counters), each on a redis-server of this file's own: its counts start empty (failed logins from
// 127.0.0.1 would live 15 minutes in the shared Redis) and it may be stopped and frozen.
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp, createServices, type Services } from '../server/app';
import { sharedRedis } from '../server/limits/shared-redis';
import { STRONG_PASSWORD, uniqueName } from './support/api';
import { insertCheapUsers } from './support/cheap-users';
import { createTestDatabase, dialects, type TestDatabase } from './support/databases';
import { allPages } from './support/pages';
import { RedisServer } from './support/redis-server';
import { until } from './support/waiting';

const logger = pino({ level: 'silent' });

// README, "Limits": 300 writes per user per minute; 10 failed logins per username in 15 minutes.
const WRITES_PER_MINUTE = 300;
const FAILED_LOGINS_PER_USERNAME = 10;
const LOGIN_WINDOW_SECONDS = 15 * 60;

interface Instance {
  http: supertest.Agent;
  services: Services;
  /** The instance's connection for shared counters, as main.ts makes it. */
  redis: Redis;
}

interface User {
  username: string;
  auth: { Authorization: string };
}

/**
 * Apps with rate limits on and no override of any limit, their counters on the given Redis; each
 * instance gets a connection of its own. Closed by the returned close().
 */
function instances() {
  const started: Instance[] = [];
  const start = (store: Store, redisUrl: string): Instance => {
    const redis = sharedRedis(redisUrl, logger);
    const deps = { store, logger, rateLimits: true, redis };
    const services = createServices(deps);
    const instance = { http: supertest.agent(createApp(deps, services)), services, redis };
    started.push(instance);
    return instance;
  };
  const close = () => {
    for (const instance of started) {
      instance.services.hub.close();
      instance.redis.disconnect();
    }
  };
  return { start, close };
}

async function newUser(store: Store, instance: Instance): Promise<User> {
  const username = uniqueName();
  await insertCheapUsers(store, [username]);
  const login = await instance.http.post('/auth/token/login/').send({ username, password: STRONG_PASSWORD }).expect(200);
  return { username, auth: { Authorization: `Token ${login.body.auth_token}` } };
}

/** `count` tag creations (writes), 10 at a time; their statuses. */
async function createTags(instance: Instance, user: User, count: number, prefix: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, count - i) }, (_, j) =>
        instance.http.post('/api/tags/').set(user.auth).send({ title: `${prefix} ${i + j}` }),
      ),
    );
    statuses.push(...batch.map((res) => res.status));
  }
  return statuses;
}

const ready = (redis: Redis) => until(() => redis.status === 'ready', 'the shared-state connection to be ready', 10_000);

// Needs redis-server on the PATH, as CI has (TEST_REDIS_URL set).
describe.skipIf(!process.env.TEST_REDIS_URL)('rate limits with Redis', () => {
  describe.each(dialects)('write limit shared by two instances [%s]', (dialect) => {
    let database: TestDatabase;
    let otherStore: Store | undefined;
    let redisServer: RedisServer;
    const apps = instances();
    let a: Instance;
    let b: Instance;

    beforeAll(async () => {
      [database, redisServer] = await Promise.all([createTestDatabase(dialect), RedisServer.start()]);
      a = apps.start(database.store, redisServer.url);
      // The second instance opens the database again where it can (an in-memory SQLite cannot be).
      if (dialect === 'postgres') otherStore = await openDatabase(database.url);
      b = apps.start(otherStore ?? database.store, redisServer.url);
      await Promise.all([ready(a.redis), ready(b.redis)]);
    });

    afterAll(async () => {
      apps.close();
      await otherStore?.close();
      await redisServer?.stop();
      await database?.drop();
    });

    it(`adds up a user's writes on both: after ${WRITES_PER_MINUTE / 2} on each, the next on either is refused`, async () => {
      const [ann, bob] = [await newUser(database.store, a), await newUser(database.store, a)];
      const half = WRITES_PER_MINUTE / 2;
      // Each instance alone sees half the limit: only a shared count refuses anything.
      expect(await createTags(a, ann, half, 'on a')).toEqual(Array(half).fill(201));
      expect(await createTags(b, ann, half, 'on b')).toEqual(Array(half).fill(201));
      for (const instance of [a, b]) {
        const refused = await instance.http.post('/api/tags/').set(ann.auth).send({ title: 'one too many' });
        expect(refused.status).toBe(429);
        expect(refused.body).toEqual({ detail: expect.stringContaining('Too many write requests') });
        expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
        expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
        // Reads are not limited; another user's writes are not affected, on either instance.
        await instance.http.get('/api/tags/').set(ann.auth).expect(200);
        await instance.http.post('/api/tags/').set(bob.auth).send({ title: `bob ${Math.random()}` }).expect(201);
      }
      expect((await allPages(a.http, '/api/tags/', ann.auth, 100)).flat()).toHaveLength(WRITES_PER_MINUTE);
    });
  });

  describe.each(dialects)('login throttle while Redis is unreachable [%s]', (dialect) => {
    let database: TestDatabase;
    let redisServer: RedisServer;
    const apps = instances();
    let app: Instance;

    beforeAll(async () => {
      [database, redisServer] = await Promise.all([createTestDatabase(dialect), RedisServer.start()]);
      app = apps.start(database.store, redisServer.url);
    });

    afterAll(async () => {
      apps.close();
      await redisServer?.stop();
      await database?.drop();
    });

    /** Ten failures for `victim` answered 400, then the 11th attempt, with the right password, refused. */
    async function expectEleventhAttemptRefused(victim: User, other: User) {
      for (let attempt = 1; attempt <= FAILED_LOGINS_PER_USERNAME; attempt++) {
        const res = await app.http.post('/auth/token/login/').send({ username: victim.username, password: `wrong ${attempt}` });
        expect(res.status, `attempt ${attempt}`).toBe(400);
      }
      const refused = await app.http.post('/auth/token/login/').send({ username: victim.username, password: STRONG_PASSWORD });
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(LOGIN_WINDOW_SECONDS);
      // Only that username: another logs in.
      await app.http.post('/auth/token/login/').send({ username: other.username, password: STRONG_PASSWORD }).expect(200);
    }

    it('counts failed logins in the process while its Redis is down: the 11th attempt for a username gets 429', async () => {
      await redisServer.start(); // a no-op unless another test left it stopped
      await ready(app.redis);
      const [victim, other] = [await newUser(database.store, app), await newUser(database.store, app)];
      await redisServer.stop();
      try {
        await until(() => app.redis.status !== 'ready', 'the shared-state connection to notice Redis is gone');
        await expectEleventhAttemptRefused(victim, other);
      } finally {
        await redisServer.start();
      }
    });

    it('counts failed logins in the process while its Redis hangs (connected, never answering): the 11th gets 429', async () => {
      await redisServer.start();
      await ready(app.redis);
      const [victim, other] = [await newUser(database.store, app), await newUser(database.store, app)];
      redisServer.pause();
      try {
        // Each count waits out the connection's 300 ms command timeout: ~0.6 s an attempt.
        await expectEleventhAttemptRefused(victim, other);
        expect(app.redis.status).toBe('ready'); // still connected: only the answers were missing
      } finally {
        redisServer.resume();
      }
    });
  });
});

// server/main.ts's own wiring of DATABASE_URL (Postgres), REDIS_URL and CORS_ORIGINS: two real
// processes, as `npm start` runs them, on one Postgres database and one Redis. (The multi-instance
// suite builds its instances itself, so a mistake in main.ts would pass there.) The Redis is a
// redis-server of this file's own: its counters start empty, and it may be stopped.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD } from './support/api';
import { call, heldLongPoll, registerUser, startServer, type Answer, type ChildServer } from './support/child-server';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { RedisServer } from './support/redis-server';
import { SLACK_MS, until } from './support/waiting';

const ORIGIN = 'https://app.example.com';

describe.skipIf(!process.env.TEST_DATABASE_URL || !process.env.TEST_REDIS_URL)('server/main.ts with Postgres and Redis', () => {
  let database: TestDatabase;
  let redis: RedisServer;
  let one: ChildServer;
  let two: ChildServer;

  beforeAll(async () => {
    [database, redis] = await Promise.all([createTestDatabase('postgres'), RedisServer.start()]);
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, CORS_ORIGINS: ORIGIN };
    [one, two] = await Promise.all([startServer(env), startServer(env)]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([one?.kill(), two?.kill()]);
    await redis?.stop();
    await database?.drop();
  });

  const health = async (server: ChildServer) => (await call(server.base, 'GET', '/health/')).body;

  beforeEach(async () => {
    // Redis up and both processes subscribed, whatever the test before did to it.
    await redis.start();
    for (const server of [one, two]) {
      await until(async () => (await health(server)).realtime === 'ok', 'the process to report realtime ok', 10_000);
    }
  }, 20_000);

  it('keeps its data in the Postgres database of DATABASE_URL, shared by both processes', async () => {
    const user = await registerUser(one.base);
    const me = await call(two.base, 'GET', '/auth/users/me/', { token: user.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: user.id, username: user.username });
    // Really in that database (two processes on one default SQLite file would share users too).
    const { db, t } = database.store;
    expect(await db.select({ id: t.users.id }).from(t.users).where(eq(t.users.username, user.username))).toEqual([{ id: user.id }]);
  });

  it('reports realtime ok on its Redis bus, degraded while that Redis is down (an in-process bus never is)', async () => {
    for (const server of [one, two]) expect(await health(server)).toEqual({ status: 'ok', database: 'ok', realtime: 'ok' });
    await redis.stop();
    try {
      for (const server of [one, two]) {
        await until(async () => (await health(server)).realtime === 'degraded', 'the process to report Redis down', 10_000);
        const res = await call(server.base, 'GET', '/health/');
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ status: 'degraded', database: 'ok', realtime: 'degraded' });
      }
    } finally {
      await redis.start();
    }
    for (const server of [one, two]) {
      await until(async () => (await health(server)).realtime === 'ok', 'the process to report Redis back', 10_000);
    }
  });

  it("wakes a user's connections on one process as soon as a notification is created through the other", async () => {
    // A long-poll held by process one, beside five streams of the same user there (see heldLongPoll):
    // the notification goes to whichever of them takes it first. Each had read the database before
    // it was created; only a wake-up through Redis brings it to them. (Should the poll's first read
    // still have been under way, it answers "immediate", found in the database: then once more.)
    for (let attempt = 1; ; attempt++) {
      const held = await heldLongPoll(one.base, 10);
      try {
        const startedAt = Date.now();
        const created = await call(two.base, 'POST', '/api/notifications/test/', {
          token: held.user.token,
          body: { message: 'across processes', type: 'INFO' },
        });
        expect(created.status).toBe(201);
        const id: string = created.body.id;
        const streamed = until(
          () => held.streams.flatMap((stream) => stream.events).find((event) => event.id === id),
          'a stream on process one to get it',
          5000,
        );
        const arrival = await Promise.race([
          held.answer.then((answer: Answer) => {
            expect(answer.status).toBe(200);
            return { status: answer.body.status as string, ids: answer.body.notifications.map((n: { id: string }) => n.id), at: answer.at };
          }),
          streamed.then((event) => ({ status: 'streamed', ids: [event.id], at: event.at })),
        ]);
        if (arrival.status === 'immediate' && attempt < 3) continue;
        expect(['new_notification', 'streamed']).toContain(arrival.status);
        expect(arrival.ids).toEqual([id]);
        // Within milliseconds on an idle machine; the bound is only "not at the poll's 10 s timeout"
        // (with Redis healthy no fallback poll runs: only the wake-up brings it).
        expect(arrival.at - startedAt).toBeLessThan(SLACK_MS);
        return;
      } finally {
        held.close();
      }
    }
  });

  it('counts failed logins for a username across the processes', async () => {
    const user = await registerUser(one.base);
    const attempt = (server: ChildServer, password: string) =>
      call(server.base, 'POST', '/auth/token/login/', { body: { username: user.username, password } });
    // Five failures on each: each process alone has seen half the limit of ten.
    const failures = await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => attempt(one, `wrong on one ${i}`)),
      ...Array.from({ length: 5 }, (_, i) => attempt(two, `wrong on two ${i}`)),
    ]);
    expect(failures.map((res) => res.status)).toEqual(Array(10).fill(400));
    for (const server of [one, two]) {
      const refused = await attempt(server, STRONG_PASSWORD);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    }
  });

  it('counts writes for a user across the processes: after 150 on each, the next on either is refused', async () => {
    const [ann, bob] = await Promise.all([registerUser(one.base), registerUser(two.base)]);
    const write = (server: ChildServer, token: string, title: string) =>
      call(server.base, 'POST', '/api/tags/', { token, body: { title } });
    for (const [name, server] of [['one', one], ['two', two]] as const) {
      const statuses: number[] = [];
      for (let i = 0; i < 150; i += 10) {
        const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => write(server, ann.token, `${name} ${i + j}`)));
        statuses.push(...batch.map((res) => res.status));
      }
      expect(statuses, `writes on ${name}`).toEqual(Array(150).fill(201));
    }
    for (const server of [one, two]) {
      const refused = await write(server, ann.token, 'one too many');
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect((await write(server, bob.token, `bob ${server.base}`)).status).toBe(201);
    }
  });

  it('answers CORS for the origins of CORS_ORIGINS only', async () => {
    for (const server of [one, two]) {
      const preflight = (origin: string) =>
        fetch(`${server.base}/api/tags/`, {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
        });
      const allowed = await preflight(ORIGIN);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(allowed.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id/);
      const other = await preflight('https://other.example.com');
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    }
  });
});

// The failed-login window passing, and Retry-After telling how long is left of it. The real window
// is 15 minutes (auth.test.ts checks Retry-After against it); here a LoginThrottle with a window of
// a few seconds, counted in the process and in Redis, is waited out.
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp, createServices, type Services } from '../server/app';
import { AuthService } from '../server/auth/auth.service';
import { LoginThrottle } from '../server/auth/login-throttle';
import { sharedRedis } from '../server/limits/shared-redis';
import { STRONG_PASSWORD, uniqueName } from './support/api';
import { insertCheapUsers } from './support/cheap-users';
import { createTestDatabase, dialects, type TestDatabase } from './support/databases';
import { RedisServer } from './support/redis-server';
import { sleep, until } from './support/waiting';

const logger = pino({ level: 'silent' });
/** Long enough for ten failed logins on a busy machine, short enough to wait out. */
const WINDOW_SECONDS = 4;
const FAILED_LOGINS_PER_USERNAME = 10; // README, "Limits"

/** Where the counts live: in the process, or (when the run has Redis) on a redis-server of our own. */
const backends = process.env.TEST_REDIS_URL ? (['in-process', 'Redis'] as const) : (['in-process'] as const);

describe.each(dialects)('login window [%s]', (dialect) => {
  describe.each(backends)('counted %s', (backend) => {
    let database: TestDatabase;
    let redisServer: RedisServer | undefined;
    let redis: Redis | undefined;
    let services: Services;
    let auth: AuthService;
    let http: supertest.Agent;

    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      if (backend === 'Redis') {
        redisServer = await RedisServer.start();
        redis = sharedRedis(redisServer.url, logger);
        await until(() => redis!.status === 'ready', 'the shared-state connection to be ready');
      }
      const deps = { store: database.store, logger, rateLimits: true, redis };
      services = createServices(deps);
      auth = new AuthService(database.store, new LoginThrottle(true, redis, WINDOW_SECONDS));
      http = supertest.agent(createApp(deps, { ...services, auth }));
    });

    afterAll(async () => {
      services?.hub.close();
      redis?.disconnect();
      await redisServer?.stop();
      await database?.drop();
    });

    const login = (username: string, password: string) => http.post('/auth/token/login/').send({ username, password });

    it('refuses for what is left of the window (Retry-After), then lets the user in once it has passed', async () => {
      const username = uniqueName();
      await insertCheapUsers(database.store, [username]);

      const firstFailureSent = Date.now();
      for (let attempt = 1; attempt <= FAILED_LOGINS_PER_USERNAME; attempt++) {
        expect((await login(username, `wrong ${attempt}`)).status, `attempt ${attempt}`).toBe(400);
      }
      const refused = await login(username, STRONG_PASSWORD);
      const refusedAt = Date.now();
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      const retryAfter = Number(refused.headers['retry-after']);
      // The window opened with the first failure: Retry-After is the rest of it, rounded up.
      expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
      expect(retryAfter).toBeGreaterThanOrEqual(WINDOW_SECONDS - (refusedAt - firstFailureSent) / 1000);

      // Within the window even the right password is refused, and what is left only shrinks.
      const again = await login(username, STRONG_PASSWORD);
      expect(again.status).toBe(429);
      expect(Number(again.headers['retry-after'])).toBeLessThanOrEqual(retryAfter);

      // Retry-After seconds after the refusal the window has passed (waiting on the clock: a timer may
      // fire a millisecond early).
      while (Date.now() < refusedAt + retryAfter * 1000) await sleep(refusedAt + retryAfter * 1000 - Date.now());
      const token = (await login(username, STRONG_PASSWORD).expect(200)).body.auth_token;
      await http.get('/auth/users/me/').set('Authorization', `Token ${token}`).expect(200);

      // The count starts over: the success cleared it, and a new window allows ten failures again.
      for (let attempt = 1; attempt <= FAILED_LOGINS_PER_USERNAME; attempt++) {
        expect((await login(username, `wrong again ${attempt}`)).status, `attempt ${attempt} after the window`).toBe(400);
      }
      expect((await login(username, STRONG_PASSWORD)).status).toBe(429);
    });

    it('does not count an attempt that ended in a database failure: it got no answer about the password', async () => {
      const username = uniqueName();
      await insertCheapUsers(database.store, [username]);
      // Postgres unreachable (README: such a request gets 503 with Retry-After, and is retried).
      const lookup = vi.spyOn(auth, 'findByUsername').mockRejectedValue(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      try {
        for (let attempt = 1; attempt <= FAILED_LOGINS_PER_USERNAME; attempt++) {
          const res = await login(username, STRONG_PASSWORD);
          expect([res.status, res.headers['retry-after']], `attempt ${attempt}`).toEqual([503, '2']);
        }
      } finally {
        lookup.mockRestore();
      }
      // The database is back: the user logs in, and the ten failures it allows are all still there.
      await login(username, STRONG_PASSWORD).expect(200);
      for (let attempt = 1; attempt <= FAILED_LOGINS_PER_USERNAME; attempt++) {
        expect((await login(username, `wrong ${attempt}`)).status, `attempt ${attempt} after the outage`).toBe(400);
      }
    });
  });
});

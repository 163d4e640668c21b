import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp } from '../server/app';
import { RedisBus } from '../server/realtime/redis-bus';
import { describeApi } from './support/api';
import { createTestDatabase, dialects, POSTGRES_URL, type TestDatabase } from './support/databases';
import { FreezableProxy } from './support/freezable-proxy';
import { RedisServer } from './support/redis-server';
import { SLACK_MS, until } from './support/waiting';

const HEALTHY = { status: 'ok', database: 'ok', realtime: 'ok' };
/** README: "503 ... when the database does not answer within 1 s". */
const DATABASE_ALLOWED_MS = 1000;

describeApi('health', (ctx) => {
  it('answers 200 ok without a token, and only to GET', async () => {
    const res = await ctx.http.get('/health/').expect(200);
    expect(res.body).toEqual(HEALTHY);
    await ctx.http.get('/health/').set('Authorization', 'Token not-a-token').expect(200);
    await ctx.http.post('/health/').expect(405);
  });
});

describe.each(dialects)('health: database gone [%s]', (dialect) => {
  let database: TestDatabase;
  let http: supertest.Agent;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    // A store of the app's own, closed below: the test database itself stays usable for its drop.
    const store = await openDatabase(database.url);
    http = supertest.agent(createApp({ store, logger: pino({ level: 'silent' }), rateLimits: false }));
    await http.get('/health/').expect(200);
    await store.close();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('answers 503 unavailable when the database does not answer', async () => {
    const res = await http.get('/health/').expect(503);
    expect(res.body).toEqual({ status: 'unavailable', database: 'unreachable', realtime: 'ok' });
  });

  it('stays live meanwhile: /health/live answers 200 (an orchestrator must not restart the process)', async () => {
    await http.get('/health/live').expect(200, { status: 'alive' });
  });
});

// A database that holds its connections and never answers (a hung server, a network that drops
// everything): the store's connections go through a proxy of the test's own, which it freezes.
describe.skipIf(!POSTGRES_URL)('health: database hangs [postgres]', () => {
  let database: TestDatabase;
  let proxy: FreezableProxy;
  let store: Store;
  let http: supertest.Agent;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    const proxied = await FreezableProxy.inFrontOfPostgres(database.url);
    proxy = proxied.proxy;
    store = await openDatabase(proxied.url);
    http = supertest.agent(createApp({ store, logger: pino({ level: 'silent' }), rateLimits: false }));
  });

  afterAll(async () => {
    proxy?.thaw(); // the queries left hanging finish, so that the pool can end
    await store?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('answers 503 unavailable after the 1 s it allows the database, not later, and 200 once it answers again', async () => {
    await http.get('/health/').expect(200, HEALTHY);
    proxy.freeze();
    try {
      // Twice: the first check's query still hangs in the pool when the second one comes.
      for (let check = 1; check <= 2; check++) {
        const startedAt = Date.now();
        const res = await http.get('/health/').timeout(DATABASE_ALLOWED_MS + 2 * SLACK_MS);
        const tookMs = Date.now() - startedAt;
        expect(res.status, `check ${check}`).toBe(503);
        expect(res.body).toEqual({ status: 'unavailable', database: 'unreachable', realtime: 'ok' });
        // It waits that second, no less (a slow answer is still an answer), and gives up then: not
        // at the pool's 12 s query timeout (a loaded machine may add SLACK_MS).
        expect(tookMs, `check ${check}`).toBeGreaterThanOrEqual(DATABASE_ALLOWED_MS - 10);
        expect(tookMs, `check ${check}`).toBeLessThan(DATABASE_ALLOWED_MS + SLACK_MS);
      }
      // Liveness asks nothing of the database: answered at once while it hangs.
      await http.get('/health/live').timeout(SLACK_MS).expect(200, { status: 'alive' });
    } finally {
      proxy.thaw();
    }
    await until(async () => (await http.get('/health/')).status === 200, 'health to be ok once the database answers');
    await http.get('/health/').expect(200, HEALTHY);
  });
});

// Needs redis-server on the PATH, as CI has (TEST_REDIS_URL set); a server of the test's own, to stop.
describe.skipIf(!process.env.TEST_REDIS_URL)('health: Redis bus', () => {
  let redis: RedisServer | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  describeApi(
    'health with Redis',
    (ctx) => {
      it('reports realtime degraded (still 200) while Redis is down, and ok once it is back', async () => {
        await ctx.http.get('/health/').expect(200, HEALTHY);
        await redis!.stop();
        const degraded = await until(async () => {
          const res = await ctx.http.get('/health/');
          return res.body.status === 'degraded' && res;
        }, 'health to report the bus down');
        expect(degraded.status).toBe(200);
        expect(degraded.body).toEqual({ status: 'degraded', database: 'ok', realtime: 'degraded' });
        await redis!.start();
        await until(async () => (await ctx.http.get('/health/')).body.status === 'ok', 'health to report the bus back', 10_000);
      });
    },
    {
      bus: async () => {
        redis ??= await RedisServer.start();
        if (!redis.running) await redis.start();
        return RedisBus.connect(redis.url, pino({ level: 'silent' }), { healthCheckMs: 200 });
      },
    },
  );
});

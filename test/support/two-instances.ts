import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type Store } from '../../db/open-database';
import { createApp, createServices, type Services } from '../../server/app';
import type { BusMessage } from '../../server/realtime/bus';
import { RedisBus } from '../../server/realtime/redis-bus';
import type { RedisTarget } from '../../server/realtime/redis-target';
import { createTestDatabase, type TestDatabase } from './databases';
import { RedisServer } from './redis-server';

export interface Instance {
  services: Services;
  http: supertest.Agent;
  bus: RedisBus;
}

export interface TwoInstances {
  a: Instance;
  b: Instance;
  database: TestDatabase;
  /** A redis-server of the suite's own: other test files' messages cannot drop these instances' caches. */
  redis: RedisServer;
}

/** Whether two instances can run here: they share a Postgres database and Redis. */
export const canRunTwoInstances = Boolean(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL);

/** An app instance on `store` whose bus goes through `redis` (its health checked every 200 ms). */
export async function startInstance(store: Store, redis: RedisTarget): Promise<Instance> {
  const logger = pino({ level: 'silent' });
  const bus = await RedisBus.connect(redis, logger, { healthCheckMs: 200 });
  const deps = { store, logger, rateLimits: false, bus };
  const services = createServices(deps);
  return { services, http: supertest.agent(createApp(deps, services)), bus };
}

/**
 * Two app instances on one Postgres database and one redis-server of the suite's own (the buses
 * check Redis's health every 200 ms), started before the suite and stopped after it. The object is
 * filled in beforeAll.
 */
export function useTwoInstances(): TwoInstances {
  const two = {} as TwoInstances;
  let secondStore: Store | undefined;

  beforeAll(async () => {
    [two.database, two.redis] = await Promise.all([createTestDatabase('postgres'), RedisServer.start()]);
    secondStore = await openDatabase(two.database.url);
    [two.a, two.b] = await Promise.all([startInstance(two.database.store, two.redis.url), startInstance(secondStore, two.redis.url)]);
  });

  afterAll(async () => {
    for (const instance of [two.a, two.b]) instance?.services.hub.close();
    await Promise.allSettled([two.a?.bus.close(), two.b?.bus.close(), secondStore?.close()]);
    await Promise.allSettled([two.redis?.stop(), two.database?.drop()]);
  });

  return two;
}

/**
 * Runs `change` (on another instance) and resolves once `instance` has heard the message it
 * published. Redis pushes it to every subscriber before answering the publisher, but in one test
 * process the next request to `instance` can still be read before the message is: what a client
 * going through a load balancer cannot outrun is a race here. Listeners run in the order they were
 * added, so the instance's caches have acted on the message by then.
 */
export async function afterHeard(instance: Instance, kind: 'flagsChanged' | 'usersChanged', change: () => Promise<unknown>): Promise<void> {
  let detach: () => void = () => {};
  const heard = new Promise<void>((resolve) => {
    detach = instance.bus.subscribe((message: BusMessage) => kind in message && resolve());
  });
  try {
    await change();
    await heard;
  } finally {
    detach();
  }
}

// Issue 17: Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME). Two instances whose bus and shared
// counters go through a sentinel; the Redis master is killed while a client waits on a long-poll,
// the sentinel promotes the replica, ioredis follows it, and nothing is lost or delivered twice.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { loadConfig } from '../server/config';
import { sharedRedis } from '../server/limits/shared-redis';
import { createUser } from './support/api';
import { createTestDatabase, type TestDatabase } from './support/databases';
import { SentinelSetup } from './support/redis-sentinel';
import { afterHeard, canRunTwoInstances, startInstance, type Instance } from './support/two-instances';
import { until } from './support/waiting';

it('reads REDIS_SENTINELS and REDIS_SENTINEL_NAME, and refuses half or double configurations', () => {
  expect(loadConfig({ REDIS_SENTINELS: 'redis-a:26379, 10.0.0.2:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'punchclock' }).redis).toEqual({
    name: 'punchclock',
    sentinels: [
      { host: 'redis-a', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
      { host: '::1', port: 26381 },
    ],
  });
  expect(loadConfig({ REDIS_URL: 'redis://cache:6379' }).redis).toBe('redis://cache:6379');
  expect(loadConfig({}).redis).toBeUndefined();
  expect(() => loadConfig({ REDIS_SENTINELS: 'a:26379' })).toThrow(/REDIS_SENTINEL_NAME/);
  expect(() => loadConfig({ REDIS_SENTINELS: 'a:26379', REDIS_SENTINEL_NAME: 'm', REDIS_URL: 'redis://b' })).toThrow(/not both/);
  for (const entry of ['a', 'a:', 'a:0', 'a:99999', ':26379']) {
    expect(() => loadConfig({ REDIS_SENTINELS: entry, REDIS_SENTINEL_NAME: 'm' }), entry).toThrow(/host:port/);
  }
});

describe.skipIf(!canRunTwoInstances)('Redis Sentinel: a failover while clients wait [postgres]', () => {
  let sentinel: SentinelSetup;
  let database: TestDatabase;
  let secondStore: Store;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    [sentinel, database] = await Promise.all([SentinelSetup.start(), createTestDatabase('postgres')]);
    secondStore = await openDatabase(database.url);
    [a, b] = await Promise.all([startInstance(database.store, sentinel.target), startInstance(secondStore, sentinel.target)]);
  }, 60_000);

  afterAll(async () => {
    for (const instance of [a, b]) instance?.services.hub.close();
    await Promise.allSettled([a?.bus.close(), b?.bus.close(), secondStore?.close()]);
    await Promise.allSettled([sentinel?.stop(), database?.drop()]);
  });

  it('carries notifications from one instance to a client waiting on the other before, during and after the failover: none lost, none twice', async () => {
    const ann = await createUser(a);
    const created: string[] = [];
    const received: string[] = [];
    let polling = true;
    const client = (async () => {
      while (polling) {
        const res = await b.http.get('/api/notifications/long-poll/?timeout=5').set(ann.auth);
        if (res.status === 200) received.push(...(res.body.notifications as Array<{ id: string }>).map((notification) => notification.id));
      }
    })();
    const create = async (message: string) => {
      const res = await a.http.post('/api/notifications/test/').set(ann.auth).send({ message, type: 'INFO' }).expect(201);
      created.push(res.body.id as string);
    };
    try {
      await create('before the failover');
      await until(() => received.length === 1, 'the first notification on the other instance');

      const failingOver = sentinel.failOver();
      await create('while the master is gone');
      await failingOver;
      await until(() => a.bus.healthy && b.bus.healthy, 'both buses on the new master', 30_000);
      await create('after the failover');
      await until(() => received.length === 3, 'every notification on the other instance', 30_000);
    } finally {
      polling = false;
      await client;
    }
    expect(received).toEqual(created);

    // The bus carries messages again: a change on one instance is heard on the other.
    await afterHeard(b, 'usersChanged', () => a.http.patch('/auth/users/me/').set(ann.auth).send({ first_name: 'Failed over' }).expect(200));
  }, 90_000);

  it('keeps the shared counters on whichever server is the master', async () => {
    const redis = sharedRedis(sentinel.target, pino({ level: 'silent' }));
    const counts = () => redis.incr('sentinel-test-counter').catch(() => undefined);
    const servingPort = async () => Number(/tcp_port:(\d+)/.exec(await redis.info('server'))![1]);
    try {
      await until(async () => (await counts()) !== undefined, 'the counters to answer');
      expect(await servingPort()).toBe(await sentinel.masterPort());
      await sentinel.failOver();
      await until(async () => (await counts()) !== undefined, 'the counters on the new master', 30_000);
      expect(await servingPort()).toBe(await sentinel.masterPort());
    } finally {
      redis.disconnect();
    }
  }, 90_000);
});

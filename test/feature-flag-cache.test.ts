import { eq } from 'drizzle-orm';
import supertest from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../db/open-database';
import type { AuthUser } from '../server/auth/auth.service';
import { FlagCache } from '../server/feature-flags/flag-cache';
import { InMemoryBus } from '../server/realtime/bus';
import { createUser, describeApi, type TestUser } from './support/api';
import { movableClock } from './support/movable-clock';
import { SwitchableBus } from './support/switchable-bus';
import { afterHeard, canRunTwoInstances, useTwoInstances, type Instance } from './support/two-instances';
import { until } from './support/waiting';

const FLAGS = '/api/feature-flags/flags/';
const MINE = '/api/feature-flags/user-features/my_features/';
const check = (key: string) => `/api/feature-flags/user-features/${key}/check/`;
const logAccess = (key: string) => `/api/feature-flags/user-features/${key}/log-access/`;

let flagCount = 0;
const newKey = () => `cached_${process.pid}_${++flagCount}`;

/** Changes made to the database behind the service's back: only the cache's lifetime or a drop shows them. */
const behindTheBack = (store: Store) => ({
  disable: (key: string) => store.db.update(store.t.featureFlags).set({ isEnabled: false }).where(eq(store.t.featureFlags.key, key)),
  remove: (key: string) => store.db.delete(store.t.featureFlags).where(eq(store.t.featureFlags.key, key)),
});

type Http = supertest.Agent | supertest.SuperTest<supertest.Test>;

/** A flag made through the admin API, enabled for everyone with access, and granted to `users`. */
async function grantedFlag(http: Http, admin: TestUser, ...users: TestUser[]): Promise<string> {
  const key = newKey();
  await http.post(FLAGS).set(admin.auth).send({ key, name: key, is_enabled: true, rollout_percentage: 100 }).expect(201);
  if (users.length > 0) await http.post(`${FLAGS}${key}/users/`).set(admin.auth).send({ user_ids: users.map((user) => user.id) }).expect(200);
  return key;
}

async function access(http: Http, user: TestUser, key: string): Promise<{ status: number; enabled: boolean; access: boolean }> {
  const res = await http.get(check(key)).set(user.auth);
  return { status: res.status, enabled: res.body.is_enabled, access: res.body.user_has_access };
}

const myFeatureKeys = async (http: Http, user: TestUser) => {
  const res = await http.get(MINE).set(user.auth).expect(200);
  return (res.body.enabled_features as Array<{ key: string }>).map((flag) => flag.key);
};

const asAuthUser = (user: TestUser): AuthUser => ({ id: user.id, username: user.username, isAdmin: false }) as AuthUser;

let bus: SwitchableBus;

describeApi(
  'feature flag cache',
  (ctx) => {
    let admin: TestUser;
    let ann: TestUser;
    const back = () => behindTheBack(ctx.database.store);

    beforeAll(async () => {
      [admin, ann] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser()]);
    });

    it('answers warm evaluations without a query, so a change behind the API’s back does not show', async () => {
      const key = await grantedFlag(ctx.http, admin, ann);
      const flags = ctx.services.featureFlags;
      await flags.check(asAuthUser(ann), key);
      const before = ctx.queryCount();
      expect(await flags.check(asAuthUser(ann), key)).toMatchObject({ userHasAccess: true, isEnabled: true });
      expect((await flags.myFeatures(asAuthUser(ann))).enabled.map((flag) => flag.key)).toContain(key);
      expect(ctx.queryCount() - before).toBe(0);

      await back().disable(key);
      expect(await access(ctx.http, ann, key)).toEqual({ status: 200, enabled: true, access: true });
    });

    it('shares one load between concurrent misses', async () => {
      const key = await grantedFlag(ctx.http, admin, ann);
      const before = ctx.queryCount();
      const answers = await Promise.all(Array.from({ length: 20 }, () => ctx.services.featureFlags.check(asAuthUser(ann), key)));
      expect(answers.every((answer) => answer?.isEnabled)).toBe(true);
      // The flag list and ann's grants: one query each.
      expect(ctx.queryCount() - before).toBe(2);
    });

    it('drops everything at once on every change: revoke, grant, switch, rollout, delete, create', async () => {
      const bob = await ctx.createUser();
      const key = await grantedFlag(ctx.http, admin, ann, bob);
      expect(await access(ctx.http, ann, key)).toEqual({ status: 200, enabled: true, access: true });
      expect(await myFeatureKeys(ctx.http, bob)).toContain(key);

      await ctx.http.delete(`${FLAGS}${key}/users/${ann.id}/`).set(admin.auth).expect(204);
      expect(await access(ctx.http, ann, key)).toEqual({ status: 200, enabled: false, access: false });
      expect(await myFeatureKeys(ctx.http, ann)).not.toContain(key);

      await ctx.http.post(`${FLAGS}${key}/users/`).set(admin.auth).send({ user_ids: [ann.id] }).expect(200);
      expect(await access(ctx.http, ann, key)).toEqual({ status: 200, enabled: true, access: true });

      await ctx.http.patch(`${FLAGS}${key}/`).set(admin.auth).send({ is_enabled: false }).expect(200);
      expect(await access(ctx.http, ann, key)).toEqual({ status: 200, enabled: false, access: true });
      expect(await myFeatureKeys(ctx.http, bob)).not.toContain(key);

      await ctx.http.patch(`${FLAGS}${key}/`).set(admin.auth).send({ is_enabled: true, rollout_percentage: 0 }).expect(200);
      expect(await access(ctx.http, ann, key)).toEqual({ status: 200, enabled: false, access: true });

      await ctx.http.delete(`${FLAGS}${key}/`).set(admin.auth).expect(204);
      expect((await access(ctx.http, ann, key)).status).toBe(404);
      expect((await ctx.http.get(MINE).set(admin.auth).expect(200)).body.disabled_features.map((flag: { key: string }) => flag.key)).not.toContain(key);

      const created = newKey();
      expect((await access(ctx.http, ann, created)).status).toBe(404);
      await ctx.http.post(FLAGS).set(admin.auth).send({ key: created, name: created, is_enabled: true }).expect(201);
      expect(await access(ctx.http, ann, created)).toEqual({ status: 200, enabled: false, access: false });
      expect((await ctx.http.get(MINE).set(admin.auth).expect(200)).body.enabled_features.map((flag: { key: string }) => flag.key)).toContain(created);
    });

    it('reads the database while the bus may be missing messages, and starts empty when it is back', async () => {
      const key = await grantedFlag(ctx.http, admin, ann);
      expect(await access(ctx.http, ann, key)).toMatchObject({ enabled: true });
      bus.setHealthy(false);
      try {
        await back().disable(key);
        expect(await access(ctx.http, ann, key)).toMatchObject({ enabled: false });
        const before = ctx.queryCount();
        await ctx.services.featureFlags.check(asAuthUser(ann), key);
        expect(ctx.queryCount() - before).toBe(2);
        // Warmed while unhealthy? Nothing is kept: this change shows too.
        await ctx.database.store.db.update(ctx.database.store.t.featureFlags).set({ isEnabled: true }).where(eq(ctx.database.store.t.featureFlags.key, key));
        expect(await access(ctx.http, ann, key)).toMatchObject({ enabled: true });
      } finally {
        bus.setHealthy(true);
      }
      await back().disable(key);
      expect(await access(ctx.http, ann, key)).toMatchObject({ enabled: false });
    });

    it('answers a log-access for a flag deleted behind the cache’s back with 404, recording nothing', async () => {
      const key = await grantedFlag(ctx.http, admin, ann);
      await ctx.http.post(logAccess(key)).set(ann.auth).expect(200);
      await back().remove(key);
      const res = await ctx.http.post(logAccess(key)).set(ann.auth).expect(404);
      expect(res.body).toEqual({ error: 'Feature flag not found' });
    });
  },
  { bus: () => (bus = new SwitchableBus()) },
);

describeApi(
  'feature flag cache lifetime',
  (ctx) => {
    it('shows a change no instance announced once the lifetime is over', async () => {
      const [admin, ann] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser()]);
      const key = await grantedFlag(ctx.http, admin, ann);
      expect(await access(ctx.http, ann, key)).toMatchObject({ enabled: true });
      await behindTheBack(ctx.database.store).disable(key);
      await until(async () => !(await access(ctx.http, ann, key)).enabled, 'the cached flag to expire');
    });
  },
  { flagCache: { ttlMs: 300 } },
);

describe('feature flag cache lifetime by default', () => {
  it('serves what it loaded for 5 minutes, as SPEC.md has it, then loads again', async () => {
    const clock = movableClock();
    const cache = new FlagCache(new InMemoryBus(), { clock });
    let loads = 0;
    const read = () => cache.get('every flag', async () => ++loads);
    await read();
    await clock.advance(5 * 60_000 - 1);
    expect(await read()).toBe(1);
    await clock.advance(2);
    expect(await read()).toBe(2);
  });

  it('keeps at most 10,000 entries, dropping the least recently used first', async () => {
    const cache = new FlagCache(new InMemoryBus());
    const loads = new Map<string, number>();
    const read = (key: string) => cache.get(key, async () => loads.set(key, (loads.get(key) ?? 0) + 1).get(key));
    for (let i = 0; i < 10_000; i++) await read(`user ${i}`);
    expect(await read('user 0')).toBe(1); // kept, and now the most recently used
    await read('user 10000'); // one more: the least recently used (user 1) goes
    expect(await read('user 0')).toBe(1);
    expect(await read('user 2')).toBe(1);
    expect(await read('user 1')).toBe(2);
  });
});

// Two instances only share a cache's invalidations through a database they both open (Postgres) and
// Redis: without TEST_DATABASE_URL and TEST_REDIS_URL there is nothing to run this against. Skipped
// then, never passed: global-setup fails the run when CI=true.
describe.skipIf(!canRunTwoInstances)('feature flag cache on two instances over Redis', () => {
  const two = useTwoInstances();
  let a: Instance;
  let b: Instance;
  let admin: TestUser;
  let ann: TestUser;

  beforeAll(async () => {
    ({ a, b } = two);
    [admin, ann] = [await createUser(a, { admin: true }), await createUser(a)];
  });

  it('a revoked user loses access on the very next request on the other instance; a grant, a switch and a delete show there at once too', async () => {
    const bob = await createUser(a);
    const key = await grantedFlag(a.http, admin, ann, bob);
    expect(await access(b.http, ann, key)).toEqual({ status: 200, enabled: true, access: true });
    // b's answer comes from its cache: this change behind the back does not show on b ...
    await behindTheBack(two.database.store).disable(key);
    expect(await access(b.http, ann, key)).toMatchObject({ enabled: true });
    // ... until an administrator's change on a, whatever it is, drops every cache.
    await afterHeard(b, 'flagsChanged', () => a.http.patch(`${FLAGS}${key}/`).set(admin.auth).send({ description: 'reworded' }).expect(200));
    expect(await access(b.http, ann, key)).toEqual({ status: 200, enabled: false, access: true });
    await afterHeard(b, 'flagsChanged', () => a.http.patch(`${FLAGS}${key}/`).set(admin.auth).send({ is_enabled: true }).expect(200));
    expect(await access(b.http, ann, key)).toEqual({ status: 200, enabled: true, access: true });

    await afterHeard(b, 'flagsChanged', () => a.http.delete(`${FLAGS}${key}/users/${ann.id}/`).set(admin.auth).expect(204));
    expect(await access(b.http, ann, key)).toEqual({ status: 200, enabled: false, access: false });
    expect(await myFeatureKeys(b.http, ann)).not.toContain(key);

    await afterHeard(b, 'flagsChanged', () => a.http.post(`${FLAGS}${key}/users/`).set(admin.auth).send({ user_ids: [ann.id] }).expect(200));
    expect(await access(b.http, ann, key)).toEqual({ status: 200, enabled: true, access: true });

    expect(await myFeatureKeys(b.http, bob)).toContain(key);
    await afterHeard(b, 'flagsChanged', () => a.http.patch(`${FLAGS}${key}/`).set(admin.auth).send({ is_enabled: false }).expect(200));
    expect(await myFeatureKeys(b.http, bob)).not.toContain(key);
    expect(await access(b.http, ann, key)).toEqual({ status: 200, enabled: false, access: true });

    await afterHeard(b, 'flagsChanged', () => a.http.delete(`${FLAGS}${key}/`).set(admin.auth).expect(204));
    expect((await access(b.http, ann, key)).status).toBe(404);
    await b.http.post(logAccess(key)).set(ann.auth).expect(404);
  });

  it('while Redis is down both instances read the database, and nothing stale survives its return', async () => {
    const key = await grantedFlag(a.http, admin, ann);
    expect(await access(b.http, ann, key)).toMatchObject({ enabled: true });
    await two.redis.stop();
    try {
      await until(() => !a.bus.healthy && !b.bus.healthy, 'both buses to notice Redis is gone');
      await a.http.delete(`${FLAGS}${key}/users/${ann.id}/`).set(admin.auth).expect(204);
      expect(await access(b.http, ann, key)).toMatchObject({ access: false });
      await a.http.post(`${FLAGS}${key}/users/`).set(admin.auth).send({ user_ids: [ann.id] }).expect(200);
      expect(await access(b.http, ann, key)).toMatchObject({ access: true, enabled: true });
    } finally {
      await two.redis.start();
    }
    await until(() => a.bus.healthy && b.bus.healthy, 'both buses to be back');
    expect(await access(b.http, ann, key)).toMatchObject({ access: true, enabled: true });
    await afterHeard(b, 'flagsChanged', () => a.http.delete(`${FLAGS}${key}/users/${ann.id}/`).set(admin.auth).expect(204));
    expect(await access(b.http, ann, key)).toMatchObject({ access: false });
  });
});

import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../db/open-database';
import type { AuthUser } from '../server/auth/auth.service';
import { MAX_SESSIONS, SessionCache } from '../server/auth/session-cache';
import { SessionsService } from '../server/auth/sessions.service';
import { InMemoryBus } from '../server/realtime/bus';
import { Unauthenticated } from '../server/errors';
import { digestToken } from '../server/auth/tokens';
import { createUser, describeApi, type TestUser } from './support/api';
import { movableClock } from './support/movable-clock';
import { SwitchableBus } from './support/switchable-bus';
import { afterHeard, canRunTwoInstances, useTwoInstances, type Instance } from './support/two-instances';
import { until } from './support/waiting';

const ME = '/auth/users/me/';
const LOGOUT = '/auth/token/logout/';

/** Deletes the token in the database behind the API's back: only the cache's lifetime or a drop shows it. */
const deleteTokenBehindTheBack = (store: Store, user: TestUser) =>
  store.db.delete(store.t.authTokens).where(eq(store.t.authTokens.digest, digestToken(user.token)));

let bus: SwitchableBus;

describeApi(
  'token cache',
  (ctx) => {
    it('authenticates a known token without a query once warm, so a deletion behind the API’s back does not show', async () => {
      const ann = await ctx.createUser();
      const header = `Token ${ann.token}`;
      await ctx.services.sessions.authenticate(header);
      const before = ctx.queryCount();
      expect((await ctx.services.sessions.authenticate(header)).user.id).toBe(ann.id);
      expect(ctx.queryCount() - before).toBe(0);
      await deleteTokenBehindTheBack(ctx.database.store, ann);
      await ctx.http.get(ME).set(ann.auth).expect(200);
    });

    it('knows a token without waiting only once it was looked up, and never a malformed header', async () => {
      const ann = await ctx.createUser();
      const header = `Token ${ann.token}`;
      expect(ctx.services.sessions.knownSession(header)).toBeUndefined();
      await ctx.services.sessions.authenticate(header);
      expect(ctx.services.sessions.knownSession(header)).toEqual({ user: expect.objectContaining({ id: ann.id }), token: ann.token, tokenId: expect.any(Number) });
      expect(ctx.services.sessions.knownSession(`Bearer ${ann.token}`)?.user.id).toBe(ann.id);
      for (const malformed of [undefined, '', 'Token', `Basic ${ann.token}`, `Token ${ann.token}!`]) {
        expect(ctx.services.sessions.knownSession(malformed)).toBeUndefined();
      }
    });

    it('never keeps an unknown token: each guess asks the database, and a 401', async () => {
      const before = ctx.queryCount();
      for (let i = 0; i < 3; i++) await ctx.http.get(ME).set({ Authorization: 'Token 0123456789abcdef0123456789abcdef01234567' }).expect(401);
      expect(ctx.queryCount() - before).toBe(3);
    });

    it('looks up the tokens of one turn of the event loop in one query, and writes their uses in one', async () => {
      const users = await Promise.all(Array.from({ length: 12 }, () => ctx.createUser()));
      const { store } = ctx.database;
      // Used long enough ago that each use is written again.
      const longAgo = new Date(Date.now() - 10 * 60_000);
      await store.db.update(store.t.authTokens).set({ lastUsedAt: longAgo }).where(store.anyOf(store.t.authTokens.userId, users.map((user) => user.id)));
      // A process that knows none of them yet.
      const sessions = new SessionsService(store, new SessionCache());
      const unknown = 'Token 0123456789abcdef0123456789abcdef01234567';
      const before = ctx.queryCount();
      const settled = await Promise.allSettled([unknown, ...users.map((user) => `Token ${user.token}`)].map((header) => sessions.authenticate(header)));
      expect(settled[0]).toMatchObject({ status: 'rejected', reason: expect.any(Unauthenticated) });
      expect(settled.slice(1).map((result) => (result.status === 'fulfilled' ? result.value.user.id : result.reason))).toEqual(users.map((user) => user.id));
      await until(async () => {
        const rows = await store.db.select({ lastUsedAt: store.t.authTokens.lastUsedAt }).from(store.t.authTokens).where(store.anyOf(store.t.authTokens.userId, users.map((user) => user.id)));
        return rows.every((row) => row.lastUsedAt!.getTime() > longAgo.getTime() + 60_000);
      }, 'every use to be written');
      // One lookup and one write of the uses (besides the wait's own reads).
      const run = ctx.queriesSince(before);
      expect(run.filter((query) => /^select .*"auth_tokens"\."digest"/i.test(query))).toHaveLength(1);
      expect(run.filter((query) => /^update "auth_tokens"/i.test(query))).toHaveLength(1);
      const counted = ctx.queryCount();
      await sessions.authenticate(`Token ${users[0].token}`);
      expect(ctx.queryCount() - counted).toBe(0);
    });

    it('refuses a logged-out token on the very next request, and leaves the user’s other sessions working', async () => {
      const ann = await ctx.createUser();
      const login = await ctx.http.post('/auth/token/login/').send({ username: ann.username, password: ann.password }).expect(200);
      const other = { Authorization: `Token ${login.body.auth_token}` };
      await ctx.http.get(ME).set(ann.auth).expect(200);
      await ctx.http.get(ME).set(other).expect(200);
      await ctx.http.post(LOGOUT).set(ann.auth).expect(204);
      await ctx.http.get(ME).set(ann.auth).expect(401);
      await ctx.http.get(ME).set(other).expect(200);
    });

    it('shows new names on the very next request', async () => {
      const ann = await ctx.createUser();
      await ctx.http.get(ME).set(ann.auth).expect(200);
      await ctx.http.patch(ME).set(ann.auth).send({ first_name: 'Renamed' }).expect(200);
      expect((await ctx.http.get(ME).set(ann.auth).expect(200)).body.first_name).toBe('Renamed');
    });

    it('reads the database while the bus may be missing messages, and starts empty when it is back', async () => {
      const [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
      await ctx.http.get(ME).set(ann.auth).expect(200);
      await ctx.http.get(ME).set(bob.auth).expect(200);
      bus.setHealthy(false);
      try {
        await deleteTokenBehindTheBack(ctx.database.store, ann);
        await ctx.http.get(ME).set(ann.auth).expect(401);
        await ctx.http.get(ME).set(bob.auth).expect(200);
      } finally {
        bus.setHealthy(true);
      }
      await deleteTokenBehindTheBack(ctx.database.store, bob);
      await ctx.http.get(ME).set(bob.auth).expect(401);
    });
  },
  { bus: () => (bus = new SwitchableBus()) },
);

describeApi(
  'token cache lifetime',
  (ctx) => {
    it('refuses a token deleted behind the API’s back once the lifetime is over', async () => {
      const ann = await ctx.createUser();
      await ctx.http.get(ME).set(ann.auth).expect(200);
      await deleteTokenBehindTheBack(ctx.database.store, ann);
      await until(async () => (await ctx.http.get(ME).set(ann.auth)).status === 401, 'the cached token to expire');
    });
  },
  { sessionCache: { ttlMs: 300 } },
);

// Two instances share a logout only through a database they both open (Postgres) and Redis: without
// TEST_DATABASE_URL and TEST_REDIS_URL there is nothing to run this against. Skipped then, never
// passed: global-setup fails the run when CI=true.
describe.skipIf(!canRunTwoInstances)('token cache on two instances over Redis', () => {
  const two = useTwoInstances();
  let a: Instance;
  let b: Instance;

  beforeAll(() => {
    ({ a, b } = two);
  });

  it('refuses a token logged out on one instance on the very next request on the other; new names show there at once', async () => {
    const ann = await createUser(a);
    const bob = await createUser(a);
    await b.http.get(ME).set(ann.auth).expect(200);
    await b.http.get(ME).set(bob.auth).expect(200);
    // b answers from its cache: a deletion behind the back does not show there, a logout does (once b heard of it).
    await deleteTokenBehindTheBack(two.database.store, bob);
    await b.http.get(ME).set(bob.auth).expect(200);
    await afterHeard(b, 'usersChanged', () => a.http.post(LOGOUT).set(ann.auth).expect(204));
    await b.http.get(ME).set(ann.auth).expect(401);

    const carol = await createUser(a);
    await b.http.get(ME).set(carol.auth).expect(200);
    await afterHeard(b, 'usersChanged', () => a.http.patch(ME).set(carol.auth).send({ last_name: 'Changed' }).expect(200));
    expect((await b.http.get(ME).set(carol.auth).expect(200)).body.last_name).toBe('Changed');
  });

  it('while Redis is down both instances read the database, and nothing stale survives its return', async () => {
    const ann = await createUser(a);
    await b.http.get(ME).set(ann.auth).expect(200);
    await two.redis.stop();
    try {
      await until(() => !a.bus.healthy && !b.bus.healthy, 'both buses to notice Redis is gone');
      await a.http.post(LOGOUT).set(ann.auth).expect(204);
      await b.http.get(ME).set(ann.auth).expect(401);
    } finally {
      await two.redis.start();
    }
    await until(() => a.bus.healthy && b.bus.healthy, 'both buses to be back');
    await b.http.get(ME).set(ann.auth).expect(401);
  });
});

describe('token cache lifetime', () => {
  it('serves a session for 60 s from its lookup, a use not extending it, then asks the database again (README, Conventions)', async () => {
    const clock = movableClock();
    const cache = new SessionCache(new InMemoryBus(), { clock });
    let loads = 0;
    const lookUp = () =>
      cache.sessionOf('digest', async () => {
        loads++;
        return { user: { id: 1 } as AuthUser, tokenId: 1, lastUsedAt: clock.now() };
      });
    await lookUp();
    await clock.advance(30_000);
    await lookUp();
    await clock.advance(29_999);
    await lookUp();
    expect(loads).toBe(1);
    await clock.advance(2);
    await lookUp();
    expect(loads).toBe(2);
  });
});

describe('token cache size', () => {
  it('keeps the sessions of more clients than a broadcast walks in order (an LRU one too small would miss them all)', async () => {
    const cache = new SessionCache();
    const clients = 12_000;
    let loads = 0;
    const walk = async () => {
      for (let i = 0; i < clients; i++) {
        await cache.sessionOf(`digest ${i}`, async () => {
          loads++;
          return { user: { id: i } as AuthUser, tokenId: i, lastUsedAt: Date.now() };
        });
      }
    };
    await walk();
    expect(loads).toBe(clients);
    await walk();
    expect(loads).toBe(clients);
    expect(MAX_SESSIONS).toBe(100_000);
  });
});

// Issue 17, sessions and tokens: GET /auth/tokens/ lists a user's own sessions, DELETE
// /auth/tokens/{id}/ revokes one, POST /auth/token/logout_all/ revokes them all, TOKEN_TTL_DAYS makes
// unused tokens expire (sliding), and a revocation holds on every instance from the next request on.
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../db/open-database';
import { loadConfig } from '../server/config';
import { LAST_USED_RESOLUTION_MS, USER_AGENT_LENGTH } from '../server/auth/sessions.service';
import { digestToken } from '../server/auth/tokens';
import { createUser, describeApi, STRONG_PASSWORD, type ApiContext, type TestUser } from './support/api';
import { afterHeard, canRunTwoInstances, useTwoInstances, type Instance } from './support/two-instances';
import { allPages } from './support/pages';
import { until } from './support/waiting';

const ME = '/auth/users/me/';
const TOKENS = '/auth/tokens/';
const LOGOUT_ALL = '/auth/token/logout_all/';
const DAY_MS = 24 * 60 * 60_000;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A login over HTTP, as a client would make it: its token (and so a session of its own). */
async function login(ctx: Pick<ApiContext, 'http'>, user: TestUser, userAgent?: string): Promise<{ Authorization: string }> {
  const request = ctx.http.post('/auth/token/login/');
  if (userAgent !== undefined) request.set('User-Agent', userAgent);
  const res = await request.send({ username: user.username, password: STRONG_PASSWORD }).expect(200);
  return { Authorization: `Token ${res.body.auth_token}` };
}

const tokenOf = (auth: { Authorization: string }) => auth.Authorization.slice('Token '.length);

/** The row of a token, read behind the API's back. */
async function tokenRow(store: Store, auth: { Authorization: string }) {
  const [row] = await store.db.select().from(store.t.authTokens).where(eq(store.t.authTokens.digest, digestToken(tokenOf(auth))));
  return row;
}

/** Sets when a token was last used, behind the API's back (the test's clock: days pass in a moment). */
async function lastUsedAgo(store: Store, auth: { Authorization: string }, ms: number): Promise<void> {
  await store.db.update(store.t.authTokens).set({ lastUsedAt: new Date(Date.now() - ms) }).where(eq(store.t.authTokens.digest, digestToken(tokenOf(auth))));
}

describeApi('sessions and tokens', (ctx) => {
  it('lists the user’s own sessions oldest first: when made and last used, the user agent, the current one marked, never a token', async () => {
    const ann = await ctx.createUser();
    const bob = await ctx.createUser();
    const phone = await login(ctx, ann, 'Punchclock/2.1 (iPhone)');
    const laptop = await login(ctx, ann, `Mozilla/5.0 ${'x'.repeat(1000)}`);
    await login(ctx, bob, 'not anns');
    const res = await ctx.http.get(TOKENS).set(phone).expect(200);
    expect(res.body).toHaveLength(3);
    const [first, second, third] = res.body;
    expect(first).toEqual({ id: expect.any(Number), created_at: expect.stringMatching(ISO), last_used_at: expect.stringMatching(ISO), user_agent: null, expires_at: null, current: false });
    expect(second).toMatchObject({ user_agent: 'Punchclock/2.1 (iPhone)', current: true });
    expect(third.user_agent).toHaveLength(USER_AGENT_LENGTH);
    expect(third.user_agent.startsWith('Mozilla/5.0 xxx')).toBe(true);
    expect(first.id < second.id && second.id < third.id).toBe(true);
    const text = JSON.stringify(res.body);
    for (const secret of [ann.token, tokenOf(phone), tokenOf(laptop), digestToken(tokenOf(phone))]) expect(text).not.toContain(secret);
    expect((await ctx.http.get(TOKENS).set(laptop).expect(200)).body.map((session: { current: boolean }) => session.current)).toEqual([false, false, true]);
  });

  it('pages the list with a Link header', async () => {
    const ann = await ctx.createUser();
    await login(ctx, ann);
    const first = await ctx.http.get(`${TOKENS}?limit=1`).set(ann.auth).expect(200);
    expect(first.body).toHaveLength(1);
    const next = /<([^>]+)>; rel="next"/.exec(first.headers.link)![1];
    const second = await ctx.http.get(new URL(next, 'http://x').pathname + new URL(next, 'http://x').search).set(ann.auth).expect(200);
    expect(second.body).toHaveLength(1);
    expect(second.body[0].id).toBeGreaterThan(first.body[0].id);
    expect(second.headers.link).toBeUndefined();
    await ctx.http.get(`${TOKENS}?limit=0`).set(ann.auth).expect(400);
    await ctx.http.get(`${TOKENS}?cursor=nonsense`).set(ann.auth).expect(400);
  });

  it('answers 100 sessions to a page by default, the rest on the next', async () => {
    const ann = await ctx.createUser();
    const { db, t } = ctx.database.store;
    await db.insert(t.authTokens).values(Array.from({ length: 100 }, () => ({ userId: ann.id, digest: digestToken(randomUUID()), createdAt: new Date(), lastUsedAt: new Date() })));
    const pages = await allPages<{ id: number }>(ctx.http, TOKENS, ann.auth, 100);
    expect(pages.map((page) => page.length)).toEqual([100, 1]);
  });

  it('notes the last use at most once a minute per token, without making the request wait for a write', async () => {
    const ann = await ctx.createUser();
    const tablet = await login(ctx, ann);
    await lastUsedAgo(ctx.database.store, tablet, 10 * 60_000);
    const before = Date.now();
    await ctx.http.get(ME).set(tablet).expect(200);
    await until(async () => (await tokenRow(ctx.database.store, tablet)).lastUsedAt!.getTime() >= before - 5, 'the use to be written');
    // Used again within the minute: the cache answers, and nothing is written.
    const queries = ctx.queryCount();
    await ctx.http.get(ME).set(tablet).expect(200);
    expect(ctx.queryCount() - queries).toBe(0);
    expect(LAST_USED_RESOLUTION_MS).toBe(60_000);
  });

  it('revokes one session: its token is refused from the next request on, the others keep working', async () => {
    const ann = await ctx.createUser();
    const phone = await login(ctx, ann, 'phone');
    await ctx.http.get(ME).set(phone).expect(200);
    const id = (await tokenRow(ctx.database.store, phone)).id;
    await ctx.http.delete(`${TOKENS}${id}/`).set(ann.auth).expect(204);
    expect((await ctx.http.get(ME).set(phone).expect(401)).body).toEqual({ detail: 'Invalid token.' });
    await ctx.http.get(ME).set(ann.auth).expect(200);
    expect((await ctx.http.get(TOKENS).set(ann.auth).expect(200)).body.map((session: { id: number }) => session.id)).not.toContain(id);
    await ctx.http.delete(`${TOKENS}${id}/`).set(ann.auth).expect(404);
    // Its own session too: that is a logout.
    const own = (await tokenRow(ctx.database.store, ann.auth)).id;
    await ctx.http.delete(`${TOKENS}${own}/`).set(ann.auth).expect(204);
    await ctx.http.get(ME).set(ann.auth).expect(401);
  });

  it('answers 404 for another user’s session (and leaves it working), and for an id that names nothing', async () => {
    const ann = await ctx.createUser();
    const bob = await ctx.createUser();
    const bobs = (await tokenRow(ctx.database.store, bob.auth)).id;
    expect((await ctx.http.delete(`${TOKENS}${bobs}/`).set(ann.auth).expect(404)).body).toEqual({ detail: 'Not found.' });
    await ctx.http.get(ME).set(bob.auth).expect(200);
    for (const id of ['2147483647', 'abc', '0', '-1', '1.5']) await ctx.http.delete(`${TOKENS}${id}/`).set(ann.auth).expect(404);
    await ctx.http.delete(`${TOKENS}${bobs}/`).expect(401);
  });

  it('logs out everywhere: every token of the user is refused, this one included, and no one else’s', async () => {
    const ann = await ctx.createUser();
    const bob = await ctx.createUser();
    const others = [await login(ctx, ann), await login(ctx, ann)];
    for (const auth of [ann.auth, ...others]) await ctx.http.get(ME).set(auth).expect(200);
    await ctx.http.post(LOGOUT_ALL).set(others[0]).expect(204);
    for (const auth of [ann.auth, ...others]) await ctx.http.get(ME).set(auth).expect(401);
    await ctx.http.get(ME).set(bob.auth).expect(200);
    const fresh = await login(ctx, ann);
    expect((await ctx.http.get(TOKENS).set(fresh).expect(200)).body).toEqual([expect.objectContaining({ current: true })]);
    await ctx.http.post(LOGOUT_ALL).expect(401);
  });
});

describeApi(
  'sessions and tokens with TOKEN_TTL_DAYS (1 day)',
  (ctx) => {
    it('refuses a token unused for longer than its lifetime, and takes one used within it, pushing its end back', async () => {
      const ann = await ctx.createUser();
      const stale = await login(ctx, ann);
      const lively = await login(ctx, ann);
      await lastUsedAgo(ctx.database.store, stale, DAY_MS + 60_000);
      await lastUsedAgo(ctx.database.store, lively, DAY_MS - 60 * 60_000);
      expect((await ctx.http.get(ME).set(stale).expect(401)).body).toEqual({ detail: 'Token expired.' });
      const before = Date.now();
      await ctx.http.get(ME).set(lively).expect(200);
      await until(async () => (await tokenRow(ctx.database.store, lively)).lastUsedAt!.getTime() >= before - 5, 'the use to be written');
      const listed = (await ctx.http.get(TOKENS).set(lively).expect(200)).body as Array<{ current: boolean; last_used_at: string; expires_at: string }>;
      // The expired session is not listed; the others end a day after their last use.
      expect(listed).toHaveLength(2);
      for (const session of listed) expect(Date.parse(session.expires_at) - Date.parse(session.last_used_at)).toBe(DAY_MS);
      expect(Date.parse(listed.find((session) => session.current)!.expires_at)).toBeGreaterThanOrEqual(before + DAY_MS - 5);
    });

    it('purges the tokens past their lifetime, and only those', async () => {
      const ann = await ctx.createUser();
      const stale = await login(ctx, ann);
      await lastUsedAgo(ctx.database.store, stale, 2 * DAY_MS);
      const purged = await ctx.services.sessions.purgeExpired();
      expect(purged).toBeGreaterThanOrEqual(1);
      expect(await tokenRow(ctx.database.store, stale)).toBeUndefined();
      await ctx.http.get(ME).set(ann.auth).expect(200);
    });
  },
  { tokenTtlMs: DAY_MS },
);

it('reads TOKEN_TTL_DAYS: unset never expires; days, a fraction allowed; nonsense refused', () => {
  expect(loadConfig({}).tokenTtlDays).toBeUndefined();
  expect(loadConfig({ TOKEN_TTL_DAYS: '30' }).tokenTtlDays).toBe(30);
  expect(loadConfig({ TOKEN_TTL_DAYS: '0.5' }).tokenTtlDays).toBe(0.5);
  for (const value of ['0', '-1', 'never', '4000']) expect(() => loadConfig({ TOKEN_TTL_DAYS: value }), value).toThrow(/TOKEN_TTL_DAYS/);
});

// Two instances share a revocation only through a database they both open (Postgres) and Redis.
describe.skipIf(!canRunTwoInstances)('session revocation on two instances over Redis', () => {
  const two = useTwoInstances();
  let a: Instance;
  let b: Instance;

  beforeAll(() => {
    ({ a, b } = two);
  });

  it('refuses a session revoked on one instance on the very next request on the other, and all of them after logout_all', async () => {
    const ann = await createUser(a);
    const phone = await login(a, ann);
    const laptop = await login(a, ann);
    for (const auth of [ann.auth, phone, laptop]) await b.http.get(ME).set(auth).expect(200);
    const phoneId = (await tokenRow(two.database.store, phone)).id;
    await afterHeard(b, 'usersChanged', () => a.http.delete(`${TOKENS}${phoneId}/`).set(ann.auth).expect(204));
    await b.http.get(ME).set(phone).expect(401);
    await b.http.get(ME).set(laptop).expect(200);
    await afterHeard(b, 'usersChanged', () => a.http.post(LOGOUT_ALL).set(laptop).expect(204));
    for (const auth of [ann.auth, laptop]) await b.http.get(ME).set(auth).expect(401);
  });
});

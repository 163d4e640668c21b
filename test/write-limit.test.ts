import { expect, it } from 'vitest';
import { describeApi, type ApiContext, type TestUser } from './support/api';
import { allPages } from './support/pages';

// README, "Limits": "300 POST/PUT/PATCH/DELETE requests per user per minute, then 429 with
// Retry-After". The README's figures: the default suites below build the app without a limit of
// their own, so a change of the code's default must show here.
const DEFAULT_PER_MINUTE = 300;
const WINDOW_SECONDS = 60;

/** A lowered limit, for the suites about what is counted (not about the default). */
const LIMIT = { perUser: 5, windowSeconds: 60 };

const createTag = (ctx: ApiContext, user: TestUser, title: string) => ctx.http.post('/api/tags/').set(user.auth).send({ title });

/** Makes `count` writes (tag creations, 10 at a time) and returns their statuses. */
async function createTags(ctx: ApiContext, user: TestUser, count: number, prefix = 'tag'): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, count - i) }, (_, j) => createTag(ctx, user, `${prefix} ${i + j}`)),
    );
    statuses.push(...batch.map((res) => res.status));
  }
  return statuses;
}

function expectRefusedWrite(res: { status: number; body: unknown; headers: Record<string, string> }, windowSeconds: number) {
  expect(res.status).toBe(429);
  expect(res.body).toEqual({ detail: expect.stringContaining('Too many write requests') });
  expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(windowSeconds);
}

describeApi(
  'write rate limit',
  (ctx) => {
    it("refuses a user's writes beyond the limit with 429 and Retry-After, and writes nothing", async () => {
      const ann = await ctx.createUser();
      expect(await createTags(ctx, ann, LIMIT.perUser)).toEqual(Array(LIMIT.perUser).fill(201));
      const refused = await createTag(ctx, ann, 'one too many');
      expectRefusedWrite(refused, LIMIT.windowSeconds);
      // Other write methods count against the same budget.
      const [tag] = (await ctx.http.get('/api/tags/').set(ann.auth).expect(200)).body;
      await ctx.http.delete(`/api/tags/${tag.id}/`).set(ann.auth).expect(429);
      await ctx.http.patch(`/api/tags/${tag.id}/`).set(ann.auth).send({ title: 'renamed' }).expect(429);
      await ctx.http.put('/auth/users/me/').set(ann.auth).send({ first_name: 'Renamed', last_name: '' }).expect(429);
      const tags = await ctx.http.get('/api/tags/').set(ann.auth).expect(200);
      expect(tags.body.map((t: { title: string }) => t.title).sort()).toEqual(
        Array.from({ length: LIMIT.perUser }, (_, i) => `tag ${i}`).sort(),
      );
    });

    it("keeps reads and other users' writes free while a user is refused", async () => {
      const [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
      await createTags(ctx, ann, LIMIT.perUser);
      await createTag(ctx, ann, 'refused').expect(429);
      await ctx.http.get('/api/tags/').set(ann.auth).expect(200);
      await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200);
      await createTag(ctx, bob, 'mine').expect(201);
    });

    it('counts no unauthenticated write, against anyone', async () => {
      const carol = await ctx.createUser();
      // More unauthenticated writes than the limit, without a token and with a bad one: each is a
      // 401 (never a 429: they are not counted under some shared key) ...
      const anonymous = await Promise.all(
        Array.from({ length: LIMIT.perUser + 1 }, (_, i) =>
          i % 2 ? createTag(ctx, carol, 'x').set('Authorization', 'Token not-a-token') : ctx.http.post('/api/tags/').send({ title: 'x' }),
        ),
      );
      expect(anonymous.map((res) => res.status)).toEqual(Array(LIMIT.perUser + 1).fill(401));
      // ... and none was counted against the user whose write budget is then spent in full.
      expect(await createTags(ctx, carol, LIMIT.perUser)).toEqual(Array(LIMIT.perUser).fill(201));
      await createTag(ctx, carol, 'one too many').expect(429);
    });
  },
  { writeLimit: LIMIT },
);

describeApi('write rate limit, default', (ctx) => {
  it(`refuses the write after ${DEFAULT_PER_MINUTE} in a minute with 429 and Retry-After; another user's writes go on`, async () => {
    const [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
    expect(await createTags(ctx, ann, DEFAULT_PER_MINUTE)).toEqual(Array(DEFAULT_PER_MINUTE).fill(201));
    expectRefusedWrite(await createTag(ctx, ann, 'one too many'), WINDOW_SECONDS);
    await createTag(ctx, bob, 'unaffected').expect(201);
    expect((await allPages(ctx.http, '/api/tags/', ann.auth, 100)).flat()).toHaveLength(DEFAULT_PER_MINUTE);
  });
});

describeApi(
  'write rate limit with RATE_LIMITS=off',
  (ctx) => {
    it('never refuses writes, not even beyond the default limit', async () => {
      const ann = await ctx.createUser();
      const count = DEFAULT_PER_MINUTE + 1;
      expect(await createTags(ctx, ann, count)).toEqual(Array(count).fill(201));
    });
  },
  { rateLimits: false },
);

import { expect, it } from 'vitest';
import { describeApi, type TestUser } from './support/api';

const LIMIT = { perUser: 5, windowSeconds: 60 };

describeApi(
  'write rate limit',
  (ctx) => {
    let ann: TestUser;
    let bob: TestUser;

    it("refuses a user's writes beyond the limit with 429 and Retry-After, and writes nothing", async () => {
      [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
      for (let i = 0; i < LIMIT.perUser; i++) {
        await ctx.http.post('/api/tags/').set(ann.auth).send({ title: `tag ${i}` }).expect(201);
      }
      const refused = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'one too many' }).expect(429);
      expect(refused.body).toEqual({ detail: expect.stringContaining('Too many write requests') });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(LIMIT.windowSeconds);
      // Other write methods count against the same budget.
      await ctx.http.delete('/api/tags/1/').set(ann.auth).expect(429);
      const tags = await ctx.http.get('/api/tags/').set(ann.auth).expect(200);
      expect(tags.body.map((tag: { title: string }) => tag.title)).not.toContain('one too many');
      expect(tags.body).toHaveLength(LIMIT.perUser);
    });

    it('keeps reads and other users free', async () => {
      await ctx.http.get('/api/tags/').set(ann.auth).expect(200);
      await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200);
      await ctx.http.post('/api/tags/').set(bob.auth).send({ title: 'mine' }).expect(201);
    });

    it('does not count unauthenticated requests against anyone', async () => {
      await ctx.http.post('/api/tags/').send({ title: 'x' }).expect(401);
      await ctx.http.post('/api/tags/').set(bob.auth).send({ title: 'still fine' }).expect(201);
    });
  },
  { writeLimit: LIMIT },
);

describeApi(
  'write rate limit with RATE_LIMITS=off',
  (ctx) => {
    it('never refuses writes', async () => {
      const ann = await ctx.createUser();
      for (let i = 0; i < LIMIT.perUser * 2; i++) {
        await ctx.http.post('/api/tags/').set(ann.auth).send({ title: `tag ${i}` }).expect(201);
      }
    });
  },
  { writeLimit: LIMIT, rateLimits: false },
);

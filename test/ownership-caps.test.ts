// PROJECTS_PER_USER and TAGS_PER_USER (README, "Limits"): one more than the cap is a 400 that creates
// nothing; other users are not affected. Lowered here to 3 each.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config';
import { describeApi } from './support/api';

describe('PROJECTS_PER_USER and TAGS_PER_USER', () => {
  it('default to 1,000 each and take a whole number of at least 1', () => {
    expect(loadConfig({}).ownershipCaps).toEqual({ projectsPerUser: 1000, tagsPerUser: 1000 });
    expect(loadConfig({ PROJECTS_PER_USER: '5', TAGS_PER_USER: ' 7 ' }).ownershipCaps).toEqual({ projectsPerUser: 5, tagsPerUser: 7 });
    for (const bad of ['0', '-1', '1.5', 'many']) expect(() => loadConfig({ TAGS_PER_USER: bad })).toThrow(/TAGS_PER_USER/);
  });
});

describeApi(
  'ownership caps',
  (ctx) => {
    it('refuses a user’s 4th project and 4th tag with 400, creating nothing; another user still creates', async () => {
      const [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
      for (const [path, body] of [
        ['/api/projects/', (i: number) => ({ title: `Project ${i}` })],
        ['/api/tags/', (i: number) => ({ title: `tag ${i}` })],
      ] as const) {
        for (let i = 0; i < 3; i++) await ctx.http.post(path).set(ann.auth).send(body(i)).expect(201);
        const refused = await ctx.http.post(path).set(ann.auth).send(body(3)).expect(400);
        expect(refused.body).toEqual({ non_field_errors: [expect.stringMatching(/at most 3/)] });
        expect((await ctx.http.get(path).set(ann.auth).expect(200)).body).toHaveLength(3);
        await ctx.http.post(path).set(bob.auth).send(body(0)).expect(201);
      }
      // Room again once one is gone.
      const [first] = (await ctx.http.get('/api/tags/').set(ann.auth).expect(200)).body;
      await ctx.http.delete(`/api/tags/${first.id}/`).set(ann.auth).expect(204);
      await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'tag 3' }).expect(201);
    });
  },
  { ownershipCaps: { projectsPerUser: 3, tagsPerUser: 3 } },
);

// PROJECTS_PER_USER, TAGS_PER_USER and INVITATIONS_PER_PROJECT (README, "Limits"): one more than the
// cap is a 400 that creates nothing; other users and projects are not affected. Lowered here to 3 each.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config';
import { describeApi } from './support/api';

describe('PROJECTS_PER_USER, TAGS_PER_USER and INVITATIONS_PER_PROJECT', () => {
  it('default to 1,000 each and take a whole number of at least 1', () => {
    expect(loadConfig({}).ownershipCaps).toEqual({ projectsPerUser: 1000, tagsPerUser: 1000, invitationsPerProject: 1000 });
    expect(loadConfig({ PROJECTS_PER_USER: '5', TAGS_PER_USER: ' 7 ', INVITATIONS_PER_PROJECT: '9' }).ownershipCaps).toEqual({
      projectsPerUser: 5,
      tagsPerUser: 7,
      invitationsPerProject: 9,
    });
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

    it('refuses a project’s 4th pending invitation with 400, inviting nobody; another project still invites', async () => {
      const ann = await ctx.createUser();
      const [full, other] = await Promise.all(
        ['Full', 'Other'].map(async (title) => (await ctx.http.post('/api/projects/').set(ann.auth).send({ title }).expect(201)).body),
      );
      const invite = (project: { id: number }, username: string) =>
        ctx.http.post(`/api/projects/${project.id}/invitations/`).set(ann.auth).send({ username });
      // Names nobody has count as much as real ones: the owner cannot tell them apart.
      for (const name of ['nobody1', 'nobody2', 'nobody3']) await invite(full, name).expect(202);
      const bob = await ctx.createUser();
      const refused = await invite(full, bob.username).expect(400);
      expect(refused.body).toEqual({ non_field_errors: [expect.stringMatching(/at most 3 pending invitations/)] });
      expect((await ctx.http.get('/api/invitations/').set(bob.auth).expect(200)).body).toEqual([]);
      await invite(other, bob.username).expect(202);
      // Room again once one is withdrawn.
      const [first] = (await ctx.http.get(`/api/projects/${full.id}/invitations/`).set(ann.auth).expect(200)).body;
      await ctx.http.delete(`/api/projects/${full.id}/invitations/${first.id}/`).set(ann.auth).expect(204);
      await invite(full, bob.username).expect(202);
      expect((await ctx.http.get('/api/invitations/').set(bob.auth).expect(200)).body).toHaveLength(2);
    });
  },
  { ownershipCaps: { projectsPerUser: 3, tagsPerUser: 3, invitationsPerProject: 3 } },
);

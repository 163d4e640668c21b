import { beforeAll, expect, it } from 'vitest';
import { OWNERSHIP_CAPS } from '../server/limits/ownership-caps';
import { describeApi, STRONG_PASSWORD, uniqueName, type TestUser } from './support/api';
import { insertCheapUsers } from './support/cheap-users';
import { joinProject } from './support/memberships';
import { allPages } from './support/pages';

interface Project {
  id: number;
  title: string;
  description: string;
  owner_id: number;
  created_at: string;
}

interface Member {
  id: number;
  username: string;
  first_name: string;
  last_name: string;
  is_owner: boolean;
}

const ISO_WITH_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const NOT_FOUND = { detail: 'Not found.' };

describeApi('projects', (ctx) => {
  // ann owns the projects; bob is added to some; cat never is; dan is a second member to add.
  let ann: TestUser;
  let bob: TestUser;
  let cat: TestUser;
  let dan: TestUser;

  beforeAll(async () => {
    [ann, bob, cat, dan] = await Promise.all([
      ctx.createUser({ firstName: 'Ann' }),
      ctx.createUser({ firstName: 'Bob' }),
      ctx.createUser(),
      ctx.createUser(),
    ]);
  });

  const create = async (owner: TestUser, body: object = { title: 'Project' }): Promise<Project> =>
    (await ctx.http.post('/api/projects/').set(owner.auth).send(body).expect(201)).body;

  const listIds = async (user: TestUser): Promise<number[]> =>
    (await ctx.http.get('/api/projects/').set(user.auth).expect(200)).body.map((p: Project) => p.id);

  const members = async (project: Project, user: TestUser = ann): Promise<Member[]> =>
    (await ctx.http.get(`/api/projects/${project.id}/members/`).set(user.auth).expect(200)).body;

  const memberIds = async (project: Project) => (await members(project)).map((m) => m.id);

  /** Invited by `as` (the owner), and accepted. */
  const addMember = (project: Project, user: TestUser, as: TestUser = ann) => joinProject(ctx.http, project, user, as);

  const fetch = async (project: Project, user: TestUser = ann): Promise<Project> =>
    (await ctx.http.get(`/api/projects/${project.id}/`).set(user.auth).expect(200)).body;

  const asMember = (user: TestUser, isOwner: boolean, firstName = ''): Member => ({
    id: user.id,
    username: user.username,
    first_name: firstName,
    last_name: '',
    is_owner: isOwner,
  });

  it('answers 100 projects to a page by default, the rest on the next', async () => {
    const owner = await ctx.createUser();
    const { db, t } = ctx.database.store;
    await db.insert(t.projects).values(Array.from({ length: 101 }, (_, i) => ({ title: `P${i}`, description: '', ownerId: owner.id, createdAt: new Date() })));
    const pages = await allPages<Project>(ctx.http, '/api/projects/', owner.auth, 100);
    expect(pages.map((page) => page.length)).toEqual([100, 1]);
  });

  it('answers 100 members to a page by default, the rest on the next', async () => {
    const owner = await ctx.createUser();
    const project = await create(owner, { title: 'Crowded' });
    const ids = await insertCheapUsers(ctx.database.store, Array.from({ length: 100 }, () => uniqueName('crowd')));
    const { db, t } = ctx.database.store;
    await db.insert(t.projectMembers).values(ids.map((userId) => ({ projectId: project.id, userId, createdAt: new Date() })));
    const pages = await allPages<Member>(ctx.http, `/api/projects/${project.id}/members/`, owner.auth, 100);
    expect(pages.map((page) => page.length)).toEqual([100, 1]);
  });

  it('pages projects oldest first and members owner first, then by username (limit ≤ 100, the next page in Link)', async () => {
    const owner = await ctx.createUser();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await create(owner, { title: `Paged ${i}` }));
    const pages = await allPages<Project>(ctx.http, '/api/projects/?limit=2', owner.auth, 2);
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
    expect(pages.flat().map((p) => p.id)).toEqual(made.map((p) => p.id));

    const team = await Promise.all([ctx.createUser(), ctx.createUser(), ctx.createUser()]);
    for (const user of team) await addMember(made[0], user, owner);
    const memberPages = await allPages<Member>(ctx.http, `/api/projects/${made[0].id}/members/?limit=2`, owner.auth, 2);
    const expected = [owner.username, ...team.map((user) => user.username).sort()];
    expect(memberPages.flat().map((m) => m.username)).toEqual(expected);
    expect(memberPages.flat()[0].is_owner).toBe(true);

    for (const query of ['limit=0', 'limit=101', 'limit=x', 'cursor=garbage']) {
      await ctx.http.get(`/api/projects/?${query}`).set(owner.auth).expect(400);
      await ctx.http.get(`/api/projects/${made[0].id}/members/?${query}`).set(owner.auth).expect(400);
    }
  });

  it('creates a project whose creator is its owner and first member', async () => {
    const before = Date.now();
    const res = await ctx.http
      .post('/api/projects/')
      .set(ann.auth)
      .send({ title: 'Alpha', description: 'The first one' })
      .expect(201);
    const alpha: Project = res.body;
    expect(alpha).toEqual({
      id: expect.any(Number),
      title: 'Alpha',
      description: 'The first one',
      owner_id: ann.id,
      created_at: expect.stringMatching(ISO_WITH_MS),
    });
    const createdAt = Date.parse(alpha.created_at);
    expect(createdAt).toBeGreaterThanOrEqual(before - 1000);
    expect(createdAt).toBeLessThanOrEqual(Date.now() + 1000);

    expect(await fetch(alpha)).toEqual(alpha);
    const list = await ctx.http.get('/api/projects/').set(ann.auth).expect(200);
    expect(list.body).toContainEqual(alpha);
    expect(await members(alpha)).toEqual([asMember(ann, true, 'Ann')]);

    // description is optional and defaults to ""; the title is trimmed.
    const bare = await create(ann, { title: '  Bare  ' });
    expect(bare).toMatchObject({ title: 'Bare', description: '', owner_id: ann.id });
    expect(bare.id).toBeGreaterThan(alpha.id);
    expect(await fetch(bare)).toEqual(bare);
  });

  it('lists only the projects the user owns or joined, in id order', async () => {
    const own = await create(cat, { title: 'Cat own' });
    const added = await create(ann, { title: 'Cat added' });
    const foreign = await create(ann, { title: 'Not for cat' });
    const bobs = await create(bob, { title: 'Bob own' });
    await addMember(added, cat);

    // Updating a row must not move it in the list (Postgres writes the new version at the end of the table).
    const renamed = await ctx.http.patch(`/api/projects/${own.id}/`).set(cat.auth).send({ title: 'Cat renamed' }).expect(200);
    const catList = await ctx.http.get('/api/projects/').set(cat.auth).expect(200);
    expect(catList.body).toEqual([renamed.body, added]);

    const annIds = await listIds(ann);
    expect(annIds).toEqual(expect.arrayContaining([added.id, foreign.id]));
    expect(annIds).not.toContain(own.id);
    expect(annIds).not.toContain(bobs.id);
    expect(annIds).toEqual([...annIds].sort((a, b) => a - b));

    const bobIds = await listIds(bob);
    expect(bobIds).toContain(bobs.id);
    for (const id of [own.id, added.id, foreign.id]) expect(bobIds).not.toContain(id);
  });

  it('shows a project only to its members; 404 for everyone else and for ids that name nothing', async () => {
    const secret = await create(ann, { title: 'Secret' });
    for (const path of [`/api/projects/${secret.id}/`, `/api/projects/${secret.id}/members/`]) {
      const res = await ctx.http.get(path).set(cat.auth).expect(404);
      expect(res.body).toEqual(NOT_FOUND);
    }
    for (const id of ['999999', 'abc', '0', '-1', '1.5', '2147483648', '0x1', '1e0', '01', '%201']) {
      const one = await ctx.http.get(`/api/projects/${id}/`).set(ann.auth).expect(404);
      expect(one.body).toEqual(NOT_FOUND);
      const list = await ctx.http.get(`/api/projects/${id}/members/`).set(ann.auth).expect(404);
      expect(list.body).toEqual(NOT_FOUND);
    }
    // A member who is not the owner may look.
    await addMember(secret, bob);
    expect(await fetch(secret, bob)).toEqual(secret);
    expect(await members(secret, bob)).toEqual([asMember(ann, true, 'Ann'), asMember(bob, false, 'Bob')]);
  });

  it('lets only the owner update a project, partially', async () => {
    const project = await create(ann, { title: 'Draft', description: 'Old text' });
    await addMember(project, bob);

    const renamed = await ctx.http.patch(`/api/projects/${project.id}/`).set(ann.auth).send({ title: 'Final' }).expect(200);
    expect(renamed.body).toEqual({ ...project, title: 'Final' });
    const described = await ctx.http
      .patch(`/api/projects/${project.id}/`)
      .set(ann.auth)
      .send({ description: 'New text' })
      .expect(200);
    expect(described.body).toEqual({ ...project, title: 'Final', description: 'New text' });
    const unchanged = await ctx.http.patch(`/api/projects/${project.id}/`).set(ann.auth).send({}).expect(200);
    expect(unchanged.body).toEqual(described.body);
    expect(await fetch(project, bob)).toEqual(described.body);

    const forbidden = await ctx.http.patch(`/api/projects/${project.id}/`).set(bob.auth).send({ title: 'Mine' }).expect(403);
    expect(forbidden.body).toEqual({ detail: expect.any(String) });
    const hidden = await ctx.http.patch(`/api/projects/${project.id}/`).set(cat.auth).send({ title: 'Mine' }).expect(404);
    expect(hidden.body).toEqual(NOT_FOUND);
    await ctx.http.patch('/api/projects/abc/').set(ann.auth).send({ title: 'x' }).expect(404);
    await ctx.http.patch('/api/projects/999999/').set(ann.auth).send({ title: 'x' }).expect(404);
    expect(await fetch(project)).toEqual(described.body);
  });

  it('rejects an invalid update with 400 naming the field and changes nothing', async () => {
    const project = await create(ann, { title: 'Stable', description: 'Keep me' });
    const cases: Array<[unknown, string]> = [
      [{ color: 'red' }, 'color'],
      [{ title: 'ok', owner_id: bob.id }, 'owner_id'],
      [{ title: '' }, 'title'],
      [{ title: '   ' }, 'title'],
      [{ title: 'x'.repeat(201) }, 'title'],
      [{ title: 42 }, 'title'],
      [{ title: null }, 'title'],
      [{ description: 'x'.repeat(5001) }, 'description'],
      [{ description: null }, 'description'],
      [[], 'non_field_errors'],
    ];
    for (const [body, field] of cases) {
      const res = await ctx.http.patch(`/api/projects/${project.id}/`).set(ann.auth).send(body as object);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(Object.keys(res.body)).toEqual([field]);
      expect(res.body[field]).toEqual([expect.any(String)]);
    }
    expect(await fetch(project)).toEqual(project);

    const longest = 'y'.repeat(200);
    const ok = await ctx.http.patch(`/api/projects/${project.id}/`).set(ann.auth).send({ title: longest }).expect(200);
    expect(ok.body.title).toBe(longest);
  });

  it('lets only the owner delete a project, which then is gone for every member', async () => {
    const project = await create(ann, { title: 'Doomed' });
    await addMember(project, bob);

    const forbidden = await ctx.http.delete(`/api/projects/${project.id}/`).set(bob.auth).expect(403);
    expect(forbidden.body).toEqual({ detail: expect.any(String) });
    const hidden = await ctx.http.delete(`/api/projects/${project.id}/`).set(cat.auth).expect(404);
    expect(hidden.body).toEqual(NOT_FOUND);
    expect(await fetch(project)).toEqual(project);
    expect(await fetch(project, bob)).toEqual(project);

    const gone = await ctx.http.delete(`/api/projects/${project.id}/`).set(ann.auth).expect(204);
    expect(gone.text).toBe('');
    for (const user of [ann, bob]) {
      await ctx.http.get(`/api/projects/${project.id}/`).set(user.auth).expect(404);
      await ctx.http.get(`/api/projects/${project.id}/members/`).set(user.auth).expect(404);
      expect(await listIds(user)).not.toContain(project.id);
    }
    await ctx.http.delete(`/api/projects/${project.id}/`).set(ann.auth).expect(404);
    await ctx.http.patch(`/api/projects/${project.id}/`).set(ann.auth).send({ title: 'back' }).expect(404);
    await ctx.http.post(`/api/projects/${project.id}/invitations/`).set(ann.auth).send({ username: dan.username }).expect(404);
    await ctx.http.delete('/api/projects/abc/').set(ann.auth).expect(404);
  });

  it('lists the owner first even when their username sorts last', async () => {
    const byName = [ann, bob, cat, dan].sort((a, b) => (a.username < b.username ? -1 : 1));
    const owner = byName[byName.length - 1];
    const project = await create(owner, { title: 'Owner last by name' });
    for (const user of byName.slice(0, -1)) await addMember(project, user, owner);
    const list = await members(project, owner);
    expect(list.map((m) => m.id)).toEqual([owner.id, ...byName.slice(0, -1).map((u) => u.id)]);
    expect(list.map((m) => m.is_owner)).toEqual([true, false, false, false]);
  });

  it('pages members one at a time without skipping those whose names sort before the owner’s', async () => {
    const byName = [ann, bob, cat, dan].sort((a, b) => (a.username < b.username ? -1 : 1));
    const owner = byName[byName.length - 1];
    const project = await create(owner, { title: 'Owner last, one a page' });
    for (const user of byName.slice(0, -1)) await addMember(project, user, owner);
    const pages = await allPages<Member>(ctx.http, `/api/projects/${project.id}/members/?limit=1`, owner.auth, 1);
    expect(pages.flat().map((m) => m.id)).toEqual([owner.id, ...byName.slice(0, -1).map((u) => u.id)]);
  });

  it('pages members whose names are as long as a name may be, in any script', async () => {
    // 150 letters of three bytes of UTF-8 each: the next page's cursor carries the name.
    const longNamed = await Promise.all(
      ['漢', '字'].map(async (letter) => {
        const username = letter.repeat(150);
        const user = await ctx.services.auth.register({ username, password: STRONG_PASSWORD });
        const token = await ctx.services.sessions.open(user.id);
        return { id: user.id, username, password: STRONG_PASSWORD, token, auth: { Authorization: `Token ${token}` } };
      }),
    );
    const project = await create(ann, { title: 'Long names' });
    for (const user of longNamed) await addMember(project, user);
    const pages = await allPages<Member>(ctx.http, `/api/projects/${project.id}/members/?limit=1`, ann.auth, 1);
    const [first, ...others] = pages.flat().map((m) => m.id);
    expect(first).toBe(ann.id);
    expect(others.sort((a, b) => a - b)).toEqual(longNamed.map((u) => u.id).sort((a, b) => a - b));
  });

  it('lets the owner remove a member, who loses the project at once', async () => {
    const project = await create(ann, { title: 'Shrinking' });
    await addMember(project, bob);
    await addMember(project, dan);
    expect(await fetch(project, bob)).toEqual(project);

    const removed = await ctx.http.delete(`/api/projects/${project.id}/members/${bob.id}/`).set(ann.auth).expect(204);
    expect(removed.text).toBe('');
    const lost = await ctx.http.get(`/api/projects/${project.id}/`).set(bob.auth).expect(404);
    expect(lost.body).toEqual(NOT_FOUND);
    await ctx.http.get(`/api/projects/${project.id}/members/`).set(bob.auth).expect(404);
    expect(await listIds(bob)).not.toContain(project.id);
    expect(await memberIds(project)).toEqual([ann.id, dan.id]);
    expect(await fetch(project, dan)).toEqual(project);

    // Removed members can be invited again.
    await addMember(project, bob);
    expect(await fetch(project, bob)).toEqual(project);
  });

  it('lets only the owner remove others; never the owner; 404 for a non-member', async () => {
    const project = await create(ann, { title: 'Guarded' });
    await addMember(project, bob);
    await addMember(project, dan);
    const remove = (userId: number | string, as: TestUser = ann) =>
      ctx.http.delete(`/api/projects/${project.id}/members/${userId}/`).set(as.auth);

    const forbidden = await remove(dan.id, bob).expect(403);
    expect(forbidden.body).toEqual({ detail: expect.any(String) });
    const hidden = await remove(dan.id, cat).expect(404);
    expect(hidden.body).toEqual(NOT_FOUND);

    const owner = await remove(ann.id).expect(400);
    expect(owner.body).toEqual({ user_id: [expect.any(String)] });

    for (const userId of [cat.id, 999999, 'abc', 0, -1]) {
      const res = await remove(userId).expect(404);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    await ctx.http.delete(`/api/projects/999999/members/${bob.id}/`).set(ann.auth).expect(404);

    expect(await memberIds(project)).toEqual(
      [ann.id, ...[bob, dan].sort((a, b) => (a.username < b.username ? -1 : 1)).map((u) => u.id)],
    );
    expect((await fetch(project)).owner_id).toBe(ann.id);

    await remove(dan.id).expect(204);
    await remove(dan.id).expect(404);
  });

  it('lets a member leave (204), and then the project is gone for them; the owner cannot leave (400)', async () => {
    const project = await create(ann, { title: 'Leavable' });
    await addMember(project, bob);
    const leave = (as: TestUser) => ctx.http.delete(`/api/projects/${project.id}/members/${as.id}/`).set(as.auth);
    await leave(bob).expect(204);
    expect(await listIds(bob)).not.toContain(project.id);
    await ctx.http.get(`/api/projects/${project.id}/`).set(bob.auth).expect(404);
    await leave(bob).expect(404);
    await leave(cat).expect(404);
    const owner = await leave(ann).expect(400);
    expect(owner.body).toEqual({ user_id: ['The owner cannot leave their own project.'] });
    expect(await memberIds(project)).toEqual([ann.id]);
  });

  it('no longer adds members directly: POST …/members/ is a 405 with Allow, and memberships made before stay', async () => {
    const project = await create(ann, { title: 'By consent' });
    await addMember(project, bob);
    const refused = await ctx.http.post(`/api/projects/${project.id}/members/`).set(ann.auth).send({ user_id: dan.id }).expect(405);
    expect(refused.headers.allow).toBe('GET, OPTIONS');
    expect(refused.body).toEqual({ detail: 'Method "POST" not allowed.' });
    expect(await memberIds(project)).toEqual([ann.id, bob.id]);
  });

  it('answers 401 on every route without a token or with a bad one, and changes nothing', async () => {
    const project = await create(ann, { title: 'Locked', description: 'as is' });
    await addMember(project, bob);
    const base = `/api/projects/${project.id}/`;
    for (const auth of [{}, { Authorization: 'Token nope' }, { Authorization: 'Bearer nope' }, { Authorization: ann.token }]) {
      const responses: Array<[string, Awaited<ReturnType<typeof ctx.http.get>>]> = [
        ['list', await ctx.http.get('/api/projects/').set(auth)],
        ['create', await ctx.http.post('/api/projects/').set(auth).send({ title: 'x' })],
        ['get', await ctx.http.get(base).set(auth)],
        ['update', await ctx.http.patch(base).set(auth).send({ title: 'x' })],
        ['remove', await ctx.http.delete(base).set(auth)],
        ['listMembers', await ctx.http.get(`${base}members/`).set(auth)],
        ['removeMember', await ctx.http.delete(`${base}members/${bob.id}/`).set(auth)],
      ];
      for (const [route, res] of responses) {
        expect(res.status, `${route} with ${JSON.stringify(auth)}`).toBe(401);
        expect(res.body).toEqual({ detail: expect.any(String) });
        expect(res.headers['www-authenticate']).toBe('Token');
      }
    }
    expect(await fetch(project)).toEqual(project);
    expect(await memberIds(project)).toEqual([ann.id, bob.id]);
  });

  it('keeps long and unicode strings intact and refuses ones over the limits', async () => {
    const before = (await listIds(ann)).length;
    const tooLongDescription = await ctx.http
      .post('/api/projects/')
      .set(ann.auth)
      .send({ title: 'Long', description: 'd'.repeat(5001) })
      .expect(400);
    expect(Object.keys(tooLongDescription.body)).toEqual(['description']);
    const tooLongTitle = await ctx.http.post('/api/projects/').set(ann.auth).send({ title: 't'.repeat(201) }).expect(400);
    expect(Object.keys(tooLongTitle.body)).toEqual(['title']);
    for (const body of [{}, { title: '' }, { title: 'x', extra: 1 }, { title: 7 }, { title: 'x', description: 3 }]) {
      await ctx.http.post('/api/projects/').set(ann.auth).send(body).expect(400);
    }
    expect((await listIds(ann)).length).toBe(before);

    const longest = await create(ann, { title: 't'.repeat(200), description: 'd'.repeat(5000) });
    expect(longest.title).toHaveLength(200);
    expect(longest.description).toHaveLength(5000);
    expect(await fetch(longest)).toEqual(longest);

    const unicode = await create(ann, { title: 'Café ☕ 日本', description: 'naïve 🚀 Ελληνικά' });
    expect(unicode).toMatchObject({ title: 'Café ☕ 日本', description: 'naïve 🚀 Ελληνικά' });
    expect(await fetch(unicode)).toEqual(unicode);
    const list = await ctx.http.get('/api/projects/').set(ann.auth).expect(200);
    expect(list.body).toContainEqual(unicode);
    const renamed = await ctx.http.patch(`/api/projects/${unicode.id}/`).set(ann.auth).send({ title: 'Ünïcødé 🎉' }).expect(200);
    expect(renamed.body.title).toBe('Ünïcødé 🎉');
    expect((await fetch(unicode)).title).toBe('Ünïcødé 🎉');
  });
});

describeApi(
  'projects at the cap',
  (ctx) => {
    it('never lets one user’s concurrent creations pass PROJECTS_PER_USER together', async () => {
      const owner = await ctx.createUser();
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => ctx.http.post('/api/projects/').set(owner.auth).send({ title: `Rush ${i}` })));
      expect(answers.filter((res) => res.status === 201)).toHaveLength(3);
      expect(answers.filter((res) => res.status === 400)).toHaveLength(5);
      expect((await ctx.http.get('/api/projects/').set(owner.auth).expect(200)).body).toHaveLength(3);
    });
  },
  { ownershipCaps: { ...OWNERSHIP_CAPS, projectsPerUser: 3 } },
);

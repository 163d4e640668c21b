// Membership by consent (issue 15): an owner invites a name, its user accepts or declines. Nothing an
// owner sees tells whether a name exists; another user's invitation is a 404.
import { beforeAll, expect, it } from 'vitest';
import { usernameIdentity } from '../server/auth/username-identity';
import { OWNERSHIP_CAPS } from '../server/limits/ownership-caps';
import { describeApi, uniqueName, type ApiContext, type TestUser } from './support/api';
import { joinProject, pendingInvitation } from './support/memberships';
import { allPages } from './support/pages';

interface Project {
  id: number;
  title: string;
}

interface SentInvitation {
  id: number;
  username: string;
  invited_by: string;
  created_at: string;
}

const ISO_WITH_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const NOT_FOUND = { detail: 'Not found.' };

describeApi('invitations', (ctx) => {
  // ann owns the projects; bob is invited; cat is a member of some; eve never takes part.
  let ann: TestUser;
  let bob: TestUser;
  let cat: TestUser;
  let eve: TestUser;

  beforeAll(async () => {
    [ann, bob, cat, eve] = await Promise.all([ctx.createUser(), ctx.createUser(), ctx.createUser(), ctx.createUser()]);
  });

  const create = async (title: string, owner: TestUser = ann): Promise<Project> =>
    (await ctx.http.post('/api/projects/').set(owner.auth).send({ title }).expect(201)).body;
  const invite = (project: Project, username: unknown, as: TestUser = ann) =>
    ctx.http.post(`/api/projects/${project.id}/invitations/`).set(as.auth).send({ username } as object);
  const sent = async (project: Project): Promise<SentInvitation[]> =>
    (await ctx.http.get(`/api/projects/${project.id}/invitations/`).set(ann.auth).expect(200)).body;
  const mine = async (user: TestUser) => (await ctx.http.get('/api/invitations/').set(user.auth).expect(200)).body;
  const accept = (id: number, as: TestUser) => ctx.http.post(`/api/invitations/${id}/accept/`).set(as.auth);
  const decline = (id: number, as: TestUser) => ctx.http.post(`/api/invitations/${id}/decline/`).set(as.auth);
  const memberIds = async (project: Project) =>
    (await ctx.http.get(`/api/projects/${project.id}/members/`).set(ann.auth).expect(200)).body.map((m: { id: number }) => m.id);
  const messagesOf = async (user: TestUser): Promise<string[]> =>
    (await ctx.http.get('/api/notifications/').set(user.auth).expect(200)).body.map((n: { message: string }) => n.message);
  const invitationRows = async (ctx: ApiContext) => {
    const { db, t } = ctx.database.store;
    return db.select().from(t.projectInvitations);
  };

  it('invites a user, who sees it with its project and inviter and is notified; accepting makes a member', async () => {
    const project = await create('Invited');
    const res = await invite(project, bob.username).expect(202);
    expect(res.body).toEqual({ detail: expect.any(String) });

    const [invitation] = await mine(bob);
    expect(invitation).toEqual({
      id: expect.any(Number),
      project: { id: project.id, title: 'Invited' },
      invited_by: ann.username,
      created_at: expect.stringMatching(ISO_WITH_MS),
    });
    expect(await messagesOf(bob)).toContain(`${ann.username} invited you to join the project "Invited".`);
    // Not a member before accepting.
    await ctx.http.get(`/api/projects/${project.id}/`).set(bob.auth).expect(404);

    const accepted = await accept(invitation.id, bob).expect(200);
    expect(accepted.body).toMatchObject({ id: project.id, title: 'Invited', owner_id: ann.id });
    await ctx.http.get(`/api/projects/${project.id}/`).set(bob.auth).expect(200);
    expect(await memberIds(project)).toEqual([ann.id, bob.id]);
    expect(await mine(bob)).toEqual([]);
    expect(await sent(project)).toEqual([]);
    expect(await messagesOf(ann)).toContain(`${bob.username} accepted your invitation to the project "Invited".`);
    await accept(invitation.id, bob).expect(404);
  });

  it('answers the same 202 for a name nobody has, a member, the owner and a second invitation, and changes nothing for them', async () => {
    const project = await create('Quiet');
    await joinProject(ctx.http, project, cat, ann);
    const answers = [];
    for (const username of [bob.username, uniqueName('nobody'), cat.username, ann.username, bob.username, bob.username.toUpperCase()]) {
      const res = await invite(project, username).expect(202);
      answers.push({ body: res.body, type: res.headers['content-type'] });
    }
    expect(new Set(answers.map((answer) => JSON.stringify(answer))).size).toBe(1);
    // bob once (however spelled) and the unknown name, listed alike: the owner cannot tell them apart.
    const list = await sent(project);
    expect(list.map((invitation) => invitation.username)).toEqual([bob.username, expect.stringMatching(/^nobody_/)]);
    for (const invitation of list) {
      expect(invitation).toEqual({ id: expect.any(Number), username: expect.any(String), invited_by: ann.username, created_at: expect.stringMatching(ISO_WITH_MS) });
    }
    expect((await mine(bob)).filter((invitation: { project: Project }) => invitation.project.id === project.id)).toHaveLength(1);
    expect((await messagesOf(bob)).filter((message) => message.includes('"Quiet"'))).toHaveLength(1);
    expect((await messagesOf(cat)).filter((message) => message.includes('"Quiet"'))).toHaveLength(1);
    expect(await memberIds(project)).toEqual([ann.id, cat.id]);
  });

  it('reaches the user by any spelling of the name; a name registered after its invitation does not get it', async () => {
    const project = await create('Spelled');
    await invite(project, bob.username.toUpperCase()).expect(202);
    expect(await pendingInvitation(ctx.http, project, bob)).toBeDefined();

    const later = uniqueName('later');
    await invite(project, later).expect(202);
    // Listed by the name as the owner typed it.
    expect((await sent(project)).map((invitation) => invitation.username)).toEqual([bob.username.toUpperCase(), later]);
    await ctx.http.post('/auth/users/').send({ username: later, password: bob.password }).expect(201);
    const token = (await ctx.http.post('/auth/token/login/').send({ username: later, password: bob.password }).expect(200)).body.auth_token;
    expect((await ctx.http.get('/api/invitations/').set('Authorization', `Token ${token}`).expect(200)).body).toEqual([]);
  });

  it('declines: 204, no membership, gone from both lists', async () => {
    const project = await create('Declined');
    await invite(project, bob.username).expect(202);
    const invitation = (await pendingInvitation(ctx.http, project, bob))!;
    const res = await decline(invitation.id, bob).expect(204);
    expect(res.text).toBe('');
    expect(await memberIds(project)).toEqual([ann.id]);
    expect(await pendingInvitation(ctx.http, project, bob)).toBeUndefined();
    expect(await sent(project)).toEqual([]);
    await decline(invitation.id, bob).expect(404);
    await accept(invitation.id, bob).expect(404);
    // Declined is not barred: the owner may invite again.
    await invite(project, bob.username).expect(202);
    expect(await pendingInvitation(ctx.http, project, bob)).toBeDefined();
  });

  it("answers 404 for another user's invitation, and leaves it as it was", async () => {
    const project = await create('Not yours');
    await invite(project, bob.username).expect(202);
    const invitation = (await pendingInvitation(ctx.http, project, bob))!;
    for (const as of [eve, ann]) {
      expect((await accept(invitation.id, as).expect(404)).body).toEqual({ detail: expect.any(String) });
      expect((await decline(invitation.id, as).expect(404)).body).toEqual({ detail: expect.any(String) });
    }
    for (const id of ['999999', 'abc', '0', '-1', '2147483648']) {
      await ctx.http.post(`/api/invitations/${id}/accept/`).set(bob.auth).expect(404);
      await ctx.http.post(`/api/invitations/${id}/decline/`).set(bob.auth).expect(404);
    }
    expect(await mine(eve)).toEqual([]);
    expect(await pendingInvitation(ctx.http, project, bob)).toEqual(invitation);
    expect(await memberIds(project)).toEqual([ann.id]);
  });

  it('lets only the owner invite, list and revoke: 403 for a member, 404 for anyone else', async () => {
    const project = await create('Owned');
    await joinProject(ctx.http, project, cat, ann);
    await invite(project, bob.username).expect(202);
    const [invitation] = await sent(project);
    const base = `/api/projects/${project.id}/invitations/`;
    for (const [as, status] of [[cat, 403], [eve, 404]] as const) {
      expect((await invite(project, eve.username, as).expect(status)).body).toEqual(status === 404 ? NOT_FOUND : { detail: expect.any(String) });
      await ctx.http.get(base).set(as.auth).expect(status);
      await ctx.http.delete(`${base}${invitation.id}/`).set(as.auth).expect(status);
    }
    expect(await sent(project)).toEqual([invitation]);
    expect(await pendingInvitation(ctx.http, project, eve)).toBeUndefined();
    await ctx.http.post('/api/projects/999999/invitations/').set(ann.auth).send({ username: bob.username }).expect(404);
  });

  it('revokes: 204, gone for the invitee, who can no longer accept; an id of another project is a 404', async () => {
    const [project, other] = [await create('Revoking'), await create('Other')];
    await invite(project, bob.username).expect(202);
    await invite(other, bob.username).expect(202);
    const [invitation] = await sent(project);
    const [elsewhere] = await sent(other);
    await ctx.http.delete(`/api/projects/${project.id}/invitations/${elsewhere.id}/`).set(ann.auth).expect(404);
    const res = await ctx.http.delete(`/api/projects/${project.id}/invitations/${invitation.id}/`).set(ann.auth).expect(204);
    expect(res.text).toBe('');
    expect(await pendingInvitation(ctx.http, project, bob)).toBeUndefined();
    expect(await pendingInvitation(ctx.http, other, bob)).toBeDefined();
    await accept(invitation.id, bob).expect(404);
    await ctx.http.delete(`/api/projects/${project.id}/invitations/${invitation.id}/`).set(ann.auth).expect(404);
    expect(await memberIds(project)).toEqual([ann.id]);
  });

  it('refuses bad invitations with 400 naming the field, and writes nothing', async () => {
    const project = await create('Picky');
    const before = (await invitationRows(ctx)).length;
    const cases: Array<[unknown, string]> = [
      [{}, 'username'],
      [{ username: '' }, 'username'],
      [{ username: '   ' }, 'username'],
      [{ username: 'x'.repeat(151) }, 'username'],
      [{ username: 42 }, 'username'],
      [{ username: null }, 'username'],
      [{ username: [bob.username] }, 'username'],
      [{ username: bob.username, role: 'admin' }, 'role'],
      [{ user_id: bob.id }, 'user_id'],
    ];
    for (const [body, field] of cases) {
      const res = await ctx.http.post(`/api/projects/${project.id}/invitations/`).set(ann.auth).send(body as object);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(Object.keys(res.body), JSON.stringify(body)).toContain(field);
    }
    const array = await ctx.http.post(`/api/projects/${project.id}/invitations/`).set(ann.auth).send([bob.username]).expect(400);
    expect(array.body).toEqual({ non_field_errors: [expect.any(String)] });
    expect((await invitationRows(ctx)).length).toBe(before);
    for (const query of ['limit=0', 'limit=101', 'cursor=garbage']) {
      await ctx.http.get(`/api/invitations/?${query}`).set(bob.auth).expect(400);
      await ctx.http.get(`/api/projects/${project.id}/invitations/?${query}`).set(ann.auth).expect(400);
    }
  });

  it('makes one invitation and one membership when requests race', async () => {
    const project = await create('Race');
    const invites = await Promise.all([invite(project, eve.username), invite(project, eve.username), invite(project, eve.username.toUpperCase())]);
    expect(invites.map((res) => res.status)).toEqual([202, 202, 202]);
    expect(await sent(project)).toHaveLength(1);
    const invitation = (await pendingInvitation(ctx.http, project, eve))!;
    const accepts = await Promise.all([accept(invitation.id, eve), accept(invitation.id, eve)]);
    expect(accepts.map((res) => res.status).sort()).toEqual([200, 404]);
    expect(await memberIds(project)).toEqual([ann.id, eve.id]);
    // Then eve leaves, as any member may.
    await ctx.http.delete(`/api/projects/${project.id}/members/${eve.id}/`).set(eve.auth).expect(204);
  });

  it('invites no member when a second invitation races the acceptance of the first', async () => {
    const invitee = await ctx.createUser();
    for (let round = 0; round < 10; round++) {
      const project = await create(`Accepted meanwhile ${round}`);
      await invite(project, invitee.username).expect(202);
      const invitation = (await pendingInvitation(ctx.http, project, invitee))!;
      const [accepted, again] = await Promise.all([accept(invitation.id, invitee), invite(project, invitee.username)]);
      expect([accepted.status, again.status]).toEqual([200, 202]);
      expect(await memberIds(project)).toEqual([ann.id, invitee.id]);
      expect(await sent(project), `round ${round}`).toEqual([]);
      expect((await messagesOf(invitee)).filter((message) => message.includes(`"Accepted meanwhile ${round}"`))).toHaveLength(1);
    }
    expect(await mine(invitee)).toEqual([]);
  });

  it('answers 404, never 500, to an invitation or an acceptance that races the deletion of its project', async () => {
    const statuses: string[] = [];
    for (let round = 0; round < 15; round++) {
      const project = await create(`Doomed ${round}`);
      await invite(project, eve.username).expect(202);
      const invitation = (await pendingInvitation(ctx.http, project, eve))!;
      const [accepted, invited, deleted] = await Promise.all([
        accept(invitation.id, eve),
        invite(project, uniqueName('late')),
        ctx.http.delete(`/api/projects/${project.id}/`).set(ann.auth),
      ]);
      statuses.push(`${accepted.status} ${invited.status} ${deleted.status}`);
    }
    for (const answer of statuses) expect(answer).toMatch(/^(200|404) (202|404) 204$/);
    expect(await mine(eve)).toEqual([]);
  });

  it('pages both lists oldest first (limit ≤ 100, the next page in Link); deleting a project takes its invitations', async () => {
    const invitee = await ctx.createUser();
    const projects = [];
    for (let i = 0; i < 5; i++) {
      const project = await create(`Paged ${i}`);
      projects.push(project);
      await invite(project, invitee.username).expect(202);
      await invite(project, uniqueName('ghost')).expect(202);
    }
    const pages = await allPages<{ project: Project }>(ctx.http, '/api/invitations/?limit=2', invitee.auth, 2);
    expect(pages.flat().map((invitation) => invitation.project.id)).toEqual(projects.map((project) => project.id));
    const sentPages = await allPages<SentInvitation>(ctx.http, `/api/projects/${projects[0].id}/invitations/?limit=1`, ann.auth, 1);
    expect(sentPages.flat().map((invitation) => invitation.username)).toEqual([invitee.username, expect.stringMatching(/^ghost_/)]);

    await ctx.http.delete(`/api/projects/${projects[0].id}/`).set(ann.auth).expect(204);
    expect((await mine(invitee)).map((invitation: { project: Project }) => invitation.project.id)).toEqual(projects.slice(1).map((p) => p.id));
  });

  it('answers 100 invitations to a page by default on both lists, the rest on the next', async () => {
    const [owner, invitee] = [await ctx.createUser(), await ctx.createUser()];
    const { db, t } = ctx.database.store;
    const projects = await db
      .insert(t.projects)
      .values(Array.from({ length: 101 }, (_, i) => ({ title: `Many ${i}`, description: '', ownerId: owner.id, createdAt: new Date() })))
      .returning({ id: t.projects.id });
    await db.insert(t.projectMembers).values({ projectId: projects[0].id, userId: owner.id, createdAt: new Date() });
    const invitation = (projectId: number, username: string, inviteeId: number | null) =>
      ({ projectId, username, usernameKey: usernameIdentity(username).key, inviteeId, invitedBy: owner.id, createdAt: new Date() });
    await db.insert(t.projectInvitations).values(projects.map(({ id }) => invitation(id, invitee.username, invitee.id)));
    await db.insert(t.projectInvitations).values(Array.from({ length: 100 }, () => invitation(projects[0].id, uniqueName('ghost'), null)));
    const received = await allPages<{ id: number }>(ctx.http, '/api/invitations/', invitee.auth, 100);
    expect(received.map((page) => page.length)).toEqual([100, 1]);
    const sentPages = await allPages<SentInvitation>(ctx.http, `/api/projects/${projects[0].id}/invitations/`, owner.auth, 100);
    expect(sentPages.map((page) => page.length)).toEqual([100, 1]);
  });

  it('answers 401 on every route without a valid token, and changes nothing', async () => {
    const project = await create('Locked');
    await invite(project, bob.username).expect(202);
    const invitation = (await pendingInvitation(ctx.http, project, bob))!;
    for (const auth of [{}, { Authorization: 'Token nope' }]) {
      const responses = [
        await ctx.http.post(`/api/projects/${project.id}/invitations/`).set(auth).send({ username: eve.username }),
        await ctx.http.get(`/api/projects/${project.id}/invitations/`).set(auth),
        await ctx.http.delete(`/api/projects/${project.id}/invitations/${invitation.id}/`).set(auth),
        await ctx.http.get('/api/invitations/').set(auth),
        await ctx.http.post(`/api/invitations/${invitation.id}/accept/`).set(auth),
        await ctx.http.post(`/api/invitations/${invitation.id}/decline/`).set(auth),
      ];
      for (const res of responses) {
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ detail: expect.any(String) });
      }
    }
    expect(await pendingInvitation(ctx.http, project, bob)).toEqual(invitation);
    expect(await sent(project)).toHaveLength(1);
  });
});

describeApi(
  'invitations at the cap',
  (ctx) => {
    const create = async (owner: TestUser): Promise<Project> =>
      (await ctx.http.post('/api/projects/').set(owner.auth).send({ title: 'Capped' }).expect(201)).body;
    const invite = (project: Project, username: string, as: TestUser) =>
      ctx.http.post(`/api/projects/${project.id}/invitations/`).set(as.auth).send({ username });
    const sent = async (project: Project, as: TestUser): Promise<SentInvitation[]> =>
      (await ctx.http.get(`/api/projects/${project.id}/invitations/`).set(as.auth).expect(200)).body;

    it('never lets concurrent invitations pass the cap together', async () => {
      const ann = await ctx.createUser();
      const project = await create(ann);
      const answers = await Promise.all(Array.from({ length: 8 }, () => invite(project, uniqueName('rush'), ann)));
      expect(answers.filter((res) => res.status === 202)).toHaveLength(3);
      expect(answers.filter((res) => res.status === 400)).toHaveLength(5);
      expect(await sent(project, ann)).toHaveLength(3);
    });

    it('answers 202 to a name invited already, also when the project is full, and changes nothing', async () => {
      const ann = await ctx.createUser();
      const bob = await ctx.createUser();
      const project = await create(ann);
      for (const username of [bob.username, uniqueName('ghost'), uniqueName('ghost')]) await invite(project, username, ann).expect(202);
      const before = await sent(project, ann);
      for (const username of [bob.username, bob.username.toUpperCase(), before[1].username]) {
        expect((await invite(project, username, ann).expect(202)).body).toEqual({ detail: expect.any(String) });
      }
      await invite(project, uniqueName('one_more'), ann).expect(400);
      expect(await sent(project, ann)).toEqual(before);
      expect(await ctx.http.get('/api/invitations/').set(bob.auth).expect(200).then((res) => res.body)).toHaveLength(1);
    });
  },
  { ownershipCaps: { ...OWNERSHIP_CAPS, invitationsPerProject: 3 } },
);

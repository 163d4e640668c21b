import { eq } from 'drizzle-orm';
import { beforeAll, expect, it } from 'vitest';
import { describeApi, type TestUser } from './support/api';
import { allPages } from './support/pages';

describeApi('tags', (ctx) => {
  let ann: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
  });

  it('answers 100 tags to a page by default, the rest on the next', async () => {
    const owner = await ctx.createUser();
    const { db, t } = ctx.database.store;
    await db.insert(t.tags).values(Array.from({ length: 101 }, (_, i) => ({ userId: owner.id, title: `t${String(i).padStart(3, '0')}`, createdAt: new Date() })));
    const pages = await allPages<{ title: string }>(ctx.http, '/api/tags/', owner.auth, 100);
    expect(pages.map((page) => page.length)).toEqual([100, 1]);
  });

  it('pages tags by title (limit ≤ 100, the next page in Link)', async () => {
    const owner = await ctx.createUser();
    const titles = ['delta', 'alpha', 'echo', 'charlie', 'bravo'];
    for (const title of titles) await ctx.http.post('/api/tags/').set(owner.auth).send({ title }).expect(201);
    const pages = await allPages<{ title: string }>(ctx.http, '/api/tags/?limit=2', owner.auth, 2);
    expect(pages.flat().map((tag) => tag.title)).toEqual([...titles].sort());
    for (const query of ['limit=0', 'limit=101', 'cursor=garbage']) await ctx.http.get(`/api/tags/?${query}`).set(owner.auth).expect(400);
    // A title no tag can have, with a NUL (Postgres cannot compare with it: a 500 there once).
    const withNull = Buffer.from(JSON.stringify({ i: 1, t: 'a\u0000' })).toString('base64url');
    const refused = await ctx.http.get(`/api/tags/?cursor=${withNull}`).set(owner.auth).expect(400);
    expect(refused.body).toEqual({ cursor: ['Invalid cursor.'] });
  });

  it('pages tags with the longest titles, in any script, to the end', async () => {
    const owner = await ctx.createUser();
    // 100 characters each (the most a title may have): the next page's cursor carries the title.
    const titles = ['漢'.repeat(100), 'ä'.repeat(100), '"'.repeat(100), `a${'\u0001'.repeat(99)}`].sort();
    for (const title of titles) await ctx.http.post('/api/tags/').set(owner.auth).send({ title }).expect(201);
    const pages = await allPages<{ title: string }>(ctx.http, '/api/tags/?limit=1', owner.auth, 1);
    expect(pages.flat().map((tag) => tag.title)).toEqual(titles);
  });

  it('concurrent creations never pass TAGS_PER_USER (1,000 by default) together', async () => {
    const owner = await ctx.createUser();
    const { db, t } = ctx.database.store;
    await db.insert(t.tags).values(Array.from({ length: 999 }, (_, i) => ({ userId: owner.id, title: `t${i}`, createdAt: new Date() })));
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ctx.http.post('/api/tags/').set(owner.auth).send({ title: `new ${i}` })),
    );
    expect(responses.map((res) => res.status).sort()).toEqual([201, ...Array(19).fill(400)]);
    expect(await db.$count(t.tags, eq(t.tags.userId, owner.id))).toBe(1000);
  });

  it('creates, lists by title, renames and deletes tags', async () => {
    const user = await ctx.createUser(); // a user of its own: the list below is all of its tags
    const b = await ctx.http.post('/api/tags/').set(user.auth).send({ title: 'backend' }).expect(201);
    expect(b.body).toEqual({ id: expect.any(Number), title: 'backend' });
    // Created out of order, so that only the server's ordering can put them in order.
    for (const title of ['zz ärger ✓', 'Web', 'api', 'Zeta', 'ärger', 'b']) {
      await ctx.http.post('/api/tags/').set(user.auth).send({ title }).expect(201);
    }
    const list = await ctx.http.get('/api/tags/').set(user.auth).expect(200);
    // By title in code-point order, as SQLite compares text and as Postgres does under the C
    // collation of the test databases: capitals before lower case, letters beyond ASCII last.
    // (Under a linguistic collation Postgres would order these otherwise.)
    expect(list.body.map((tag: { title: string }) => tag.title)).toEqual(['Web', 'Zeta', 'api', 'b', 'backend', 'zz ärger ✓', 'ärger']);

    const renamed = await ctx.http.patch(`/api/tags/${b.body.id}/`).set(user.auth).send({ title: 'aardvark' }).expect(200);
    expect(renamed.body).toEqual({ id: b.body.id, title: 'aardvark' });
    const relisted = await ctx.http.get('/api/tags/').set(user.auth).expect(200);
    expect(relisted.body.map((tag: { title: string }) => tag.title)).toEqual(['Web', 'Zeta', 'aardvark', 'api', 'b', 'zz ärger ✓', 'ärger']);
    await ctx.http.delete(`/api/tags/${b.body.id}/`).set(user.auth).expect(204);
    await ctx.http.delete(`/api/tags/${b.body.id}/`).set(user.auth).expect(404);
    const left = await ctx.http.get('/api/tags/').set(user.auth).expect(200);
    expect(left.body.map((tag: { title: string }) => tag.title)).not.toContain('aardvark');
    expect(left.body).toHaveLength(6);
  });

  it('rejects a duplicate title for the same user, not for another user', async () => {
    await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'dup' }).expect(201);
    const dup = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'dup' }).expect(400);
    expect(dup.body).toEqual({ title: [expect.any(String)] });
    await ctx.http.post('/api/tags/').set(bob.auth).send({ title: 'dup' }).expect(201);

    const other = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'other' }).expect(201);
    const clash = await ctx.http.patch(`/api/tags/${other.body.id}/`).set(ann.auth).send({ title: 'dup' }).expect(400);
    expect(clash.body).toEqual({ title: [expect.any(String)] });
  });

  it("never shows or changes another user's tags", async () => {
    const mine = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'private' }).expect(201);
    const theirs = await ctx.http.get('/api/tags/').set(bob.auth).expect(200);
    expect(theirs.body.map((tag: { title: string }) => tag.title)).not.toContain('private');
    await ctx.http.patch(`/api/tags/${mine.body.id}/`).set(bob.auth).send({ title: 'stolen' }).expect(404);
    await ctx.http.delete(`/api/tags/${mine.body.id}/`).set(bob.auth).expect(404);
    const still = await ctx.http.get('/api/tags/').set(ann.auth).expect(200);
    expect(still.body).toContainEqual({ id: mine.body.id, title: 'private' });
  });

  it('rejects bad input with 400 and writes nothing', async () => {
    const before = (await ctx.http.get('/api/tags/').set(ann.auth)).body.length;
    const cases: Array<[unknown, string]> = [
      [{}, 'title'],
      [{ title: '' }, 'title'],
      [{ title: '   ' }, 'title'],
      [{ title: 42 }, 'title'],
      [{ title: 'x'.repeat(101) }, 'title'],
      [{ title: 'ok', color: 'red' }, 'color'],
      [[], 'non_field_errors'],
    ];
    for (const [body, field] of cases) {
      const res = await ctx.http.post('/api/tags/').set(ann.auth).send(body as object).expect(400);
      expect(Object.keys(res.body)).toContain(field);
    }
    await ctx.http.patch('/api/tags/abc/').set(ann.auth).send({ title: 'x' }).expect(404);
    await ctx.http.delete('/api/tags/999999/').set(ann.auth).expect(404);
    expect((await ctx.http.get('/api/tags/').set(ann.auth)).body.length).toBe(before);
  });

  it('answers 401 without a token or with a bad one', async () => {
    for (const auth of [{}, { Authorization: 'Token nope' }, { Authorization: 'Basic abc' }]) {
      await ctx.http.get('/api/tags/').set(auth).expect(401);
      await ctx.http.post('/api/tags/').set(auth).send({ title: 'x' }).expect(401);
      await ctx.http.patch('/api/tags/1/').set(auth).send({ title: 'x' }).expect(401);
      await ctx.http.delete('/api/tags/1/').set(auth).expect(401);
    }
  });
});

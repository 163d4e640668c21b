import { expect, it } from 'vitest';
import { describeApi, type TestUser } from './support/api';

describeApi('tags', (ctx) => {
  let ann: TestUser;
  let bob: TestUser;

  it('creates, lists by title, renames and deletes tags', async () => {
    [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
    const b = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'backend' }).expect(201);
    expect(b.body).toEqual({ id: expect.any(Number), title: 'backend' });
    await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'zz ärger ✓' }).expect(201);
    const list = await ctx.http.get('/api/tags/').set(ann.auth).expect(200);
    expect(list.body.map((tag: { title: string }) => tag.title)).toEqual(['backend', 'zz ärger ✓']);

    const renamed = await ctx.http.patch(`/api/tags/${b.body.id}/`).set(ann.auth).send({ title: 'api' }).expect(200);
    expect(renamed.body).toEqual({ id: b.body.id, title: 'api' });
    await ctx.http.delete(`/api/tags/${b.body.id}/`).set(ann.auth).expect(204);
    await ctx.http.delete(`/api/tags/${b.body.id}/`).set(ann.auth).expect(404);
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

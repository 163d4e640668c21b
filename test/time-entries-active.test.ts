import { beforeAll, expect, it } from 'vitest';
import { isUniqueViolation } from '../db/errors';
import { describeApi, type TestUser } from './support/api';
import { timeEntryApi, type TimeEntry } from './support/time-entry-fixtures';

// One running entry per user: starting a timer stops the running one at the same instant, also when
// many starts race, and the database itself refuses a second running entry.
describeApi('time entries: one running entry per user', (ctx) => {
  const api = timeEntryApi(ctx);
  let cat: TestUser;

  beforeAll(async () => {
    cat = await ctx.createUser();
  });

  const setUp = async () => {
    const user = await ctx.createUser();
    const project = await api.project(user, 'Work');
    return { user, project };
  };

  const runningOf = async (user: TestUser) => (await api.listAll(user, 'is_active=true&limit=100')).map((e) => e.id);

  it('starting a timer stops the running one at the instant the new one starts', async () => {
    const { user, project } = await setUp();
    const first = await api.start(user, { title: 'First', project: project.id });
    const second = await api.start(user, { title: 'Second', project: project.id });
    const stopped = await api.get(user, first.id);
    expect(stopped.is_active).toBe(false);
    expect(stopped.end_time).toBe(second.start_time);
    expect(Date.parse(stopped.end_time!)).toBeGreaterThanOrEqual(Date.parse(first.start_time));
    expect(second.is_active).toBe(true);

    const third = await api.start(user, { title: 'Third', project: project.id });
    expect((await api.get(user, second.id)).end_time).toBe(third.start_time);
    expect(await runningOf(user)).toEqual([third.id]);
    const active = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(200);
    expect(active.body.id).toBe(third.id);
  });

  it('a timer started in the past also stops the running one; a finished (manual) entry does not', async () => {
    const { user, project } = await setUp();
    const running = await api.start(user, { title: 'Running', project: project.id });
    await api.record(user, project.id, 'Manual', '2025-01-01T09:00:00.000Z', '2025-01-01T10:00:00.000Z');
    expect(await runningOf(user)).toEqual([running.id]);

    const before = Date.now();
    const backdated = await api.start(user, { title: 'Since an hour', project: project.id, start_time: new Date(before - 3_600_000).toISOString() });
    const after = Date.now();
    const stopped = await api.get(user, running.id);
    expect(stopped.is_active).toBe(false);
    expect(Date.parse(stopped.end_time!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(stopped.end_time!)).toBeLessThanOrEqual(after);
    expect(await runningOf(user)).toEqual([backdated.id]);
  });

  it("one user's start never stops another user's timer", async () => {
    const { user: ann, project: annProject } = await setUp();
    const { user: bob, project: bobProject } = await setUp();
    const bobs = await api.start(bob, { title: 'Bob', project: bobProject.id });
    await api.start(ann, { title: 'Ann 1', project: annProject.id });
    await api.start(ann, { title: 'Ann 2', project: annProject.id });
    expect((await api.get(bob, bobs.id)).is_active).toBe(true);
    expect(await runningOf(bob)).toEqual([bobs.id]);
  });

  it('20 concurrent starts: all 201, exactly one running afterwards, every other one stopped, none lost', async () => {
    const { user, project } = await setUp();
    const earlier = await api.start(user, { title: 'Before the burst', project: project.id });
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ctx.http.post('/api/time_entries/').set(user.auth).send({ title: `burst ${i}`, project: project.id })),
    );
    expect(responses.map((res) => res.status)).toEqual(Array(20).fill(201));
    const created: TimeEntry[] = responses.map((res) => res.body);
    expect(new Set(created.map((e) => e.id)).size).toBe(20);
    expect(created.map((e) => e.title).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `burst ${i}`).sort());

    const all = await api.listAll(user, 'limit=100');
    expect(all.map((e) => e.id).sort((a, b) => a - b)).toEqual([earlier.id, ...created.map((e) => e.id)].sort((a, b) => a - b));
    const running = all.filter((e) => e.is_active);
    expect(running).toHaveLength(1);
    expect(all.filter((e) => !e.is_active)).toHaveLength(20);
    for (const entry of all.filter((e) => !e.is_active)) {
      expect(entry.end_time).not.toBeNull();
      expect(entry.duration).not.toBeNull();
      expect(Date.parse(entry.end_time!), `entry ${entry.id} ends before it starts`).toBeGreaterThanOrEqual(Date.parse(entry.start_time));
    }
    // In order of start (then id), each entry was stopped by the next one, at the instant it started:
    // a chain without gaps or overlaps, the running one last.
    const chain = await api.listAll(user, 'ordering=start_time&limit=100');
    for (const [i, entry] of chain.slice(0, -1).entries()) expect(entry.end_time, `entry ${entry.id}`).toBe(chain[i + 1].start_time);
    expect(chain.at(-1)!.id).toBe(running[0].id);
    // The one running is the one current_active answers, and the database agrees.
    const active = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(200);
    expect(active.body.id).toBe(running[0].id);
    const { entries } = await api.snapshot(user.id);
    expect(entries.filter((row) => row.endTime === null).map((row) => row.id)).toEqual([running[0].id]);
    // And the next start stops it as usual.
    const after = await api.start(user, { title: 'After the burst', project: project.id });
    expect((await api.get(user, running[0].id)).end_time).toBe(after.start_time);
  });

  it('10 concurrent stops of one timer: exactly one 200, the others 400, one end time kept', async () => {
    const { user, project } = await setUp();
    const running = await api.start(user, { title: 'Running', project: project.id });
    const responses = await Promise.all(Array.from({ length: 10 }, () => ctx.http.post(`/api/time_entries/${running.id}/stop/`).set(user.auth)));
    expect(responses.map((res) => res.status).sort()).toEqual([200, ...Array(9).fill(400)]);
    const winner = responses.find((res) => res.status === 200)!;
    for (const res of responses.filter((r) => r.status === 400)) expect(res.body).toEqual({ detail: expect.any(String) });
    expect(await api.get(user, running.id)).toEqual(winner.body);
  });

  it('a patch racing a stop or a start never sets the running entry going again, nor answers 500', async () => {
    const { user, project } = await setUp();
    const tag = await api.tag(user, 'edited');
    for (let round = 0; round < 10; round++) {
      const running = await api.start(user, { title: `Round ${round}`, project: project.id });
      const patch = () => ctx.http.patch(`/api/time_entries/${running.id}/`).set(user.auth).send({ description: 'edited', project: project.id, tags: [tag.id] });
      // In either order: the patch reads the entry before the stop (or the start) and writes after it.
      const [patched, stopped, patchedAgain, started] = await Promise.all([
        patch(),
        ctx.http.post(`/api/time_entries/${running.id}/stop/`).set(user.auth),
        patch(),
        ctx.http.post('/api/time_entries/').set(user.auth).send({ title: `Next ${round}`, project: project.id }),
      ]);
      for (const res of [patched, started, patchedAgain]) expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      expect([200, 400]).toContain(stopped.status);
      // The stop or the start stopped the entry; a patch of its description leaves it stopped.
      const after = await api.get(user, running.id);
      expect(after, `round ${round}`).toMatchObject({ is_active: false, description: 'edited' });
      expect(await runningOf(user)).toEqual([started.body.id]);
      await ctx.http.post(`/api/time_entries/${started.body.id}/stop/`).set(user.auth).expect(200);
    }
  });

  it('the database refuses a second running entry for a user, whatever the code does', async () => {
    const { user, project } = await setUp();
    await api.start(user, { title: 'Running', project: project.id });
    const { db, t } = ctx.database.store;
    const row = (userId: number, endTime: Date | null) => ({
      userId,
      projectId: project.id,
      title: 'Inserted directly',
      description: '',
      startTime: new Date(),
      endTime,
      idleSeconds: 0,
      createdAt: new Date(),
    });
    const error = await db
      .insert(t.timeEntries)
      .values(row(user.id, null))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).not.toBeNull();
    expect(isUniqueViolation(error)).toBe(true);
    expect(await runningOf(user)).toHaveLength(1);

    // Finished rows of the same user, and a running row of another user, are fine.
    await db.insert(t.timeEntries).values(row(user.id, new Date(Date.now() + 1000)));
    await db.insert(t.timeEntries).values(row(cat.id, null));
    expect(await runningOf(user)).toHaveLength(1);
    expect(await runningOf(cat)).toHaveLength(1);
  });
});

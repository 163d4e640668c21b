import { beforeAll, expect, it } from 'vitest';
import { describeApi, type TestUser } from './support/api';
import {
  END_BEFORE_START,
  HH_MM_SS,
  ISO_WITH_MS,
  NO_ACTIVE,
  NOT_FOUND,
  secondsOf,
  timeEntryApi,
  type TimeEntry,
} from './support/time-entry-fixtures';

const MISSING_ID = 2_147_483_647;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const MINUTE = 60_000;

describeApi('time entries', (ctx) => {
  const api = timeEntryApi(ctx);
  // Each test that starts timers or reads a whole list has users of its own (one running entry per
  // user); cat is only ever the outsider.
  let cat: TestUser;
  let catProject: { id: number; title: string };
  let catTag: { id: number; title: string };

  beforeAll(async () => {
    cat = await ctx.createUser();
    catProject = await api.project(cat, 'Cat only');
    catTag = await api.tag(cat, 'cat-tag');
  });

  const { setUp, refused } = api;

  it('starts a timer: 201 with the entry as SPEC shows it, plus idle and actual durations', async () => {
    const { user, project, frontend, development } = await setUp();
    const before = Date.now();
    const res = await ctx.http
      .post('/api/time_entries/')
      .set(user.auth)
      .send({ title: '  Task Title  ', description: 'Optional description', project: project.id, tags: [frontend.id, development.id] })
      .expect(201);
    const after = Date.now();
    const entry: TimeEntry = res.body;
    expect(entry).toEqual({
      id: expect.any(Number),
      title: 'Task Title',
      description: 'Optional description',
      start_time: expect.stringMatching(ISO_WITH_MS),
      end_time: null,
      duration: null,
      is_active: true,
      user: user.username,
      project: 'Web Application',
      tags: ['development', 'frontend'],
      idle_duration: '00:00:00',
      actual_duration: expect.stringMatching(HH_MM_SS),
    });
    expect(Date.parse(entry.start_time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(entry.start_time)).toBeLessThanOrEqual(after);
    expect(secondsOf(entry.actual_duration)).toBeLessThanOrEqual(Math.ceil((Date.now() - before) / 1000));

    const { actual_duration: _, ...stable } = entry;
    expect(await api.get(user, entry.id)).toMatchObject(stable);
    const active = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(200);
    expect(active.body).toMatchObject(stable);

    // description and tags are optional.
    const bare = await api.start(user, { title: 'Bare', project: project.id });
    expect(bare).toMatchObject({ title: 'Bare', description: '', tags: [], project: 'Web Application', is_active: true });
  });

  it('records a finished entry from start_time and end_time; hours pass 24; the running timer keeps running', async () => {
    const { user, project, frontend } = await setUp();
    const running = await api.start(user, { title: 'Running', project: project.id });

    const long = await api.record(user, project.id, 'Two days', '2025-01-01T00:00:00.000Z', '2025-01-03T01:02:03.000Z', [frontend.id]);
    expect(long).toMatchObject({
      start_time: '2025-01-01T00:00:00.000Z',
      end_time: '2025-01-03T01:02:03.000Z',
      duration: '49:02:03',
      is_active: false,
      tags: ['frontend'],
      idle_duration: '00:00:00',
      actual_duration: '49:02:03',
    });
    const veryLong = await api.record(user, project.id, 'Two months', '2024-01-01T00:00:00.000Z', '2024-03-01T16:00:00.000Z');
    expect(veryLong.duration).toBe('1456:00:00'); // 2024 is a leap year: 60 days and 16 hours
    // Milliseconds are kept; the duration counts whole seconds.
    const short = await api.record(user, project.id, 'Short', '2025-01-05T10:00:00.250Z', '2025-01-05T10:00:02.249Z');
    expect(short).toMatchObject({ start_time: '2025-01-05T10:00:00.250Z', end_time: '2025-01-05T10:00:02.249Z', duration: '00:00:01' });
    // An offset is accepted and answered in UTC.
    const offset = await api.record(user, project.id, 'Offset', '2025-01-06T10:00:00+02:00', '2025-01-06T10:30:00+02:00');
    expect(offset).toMatchObject({ start_time: '2025-01-06T08:00:00.000Z', end_time: '2025-01-06T08:30:00.000Z', duration: '00:30:00' });

    const active = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(200);
    expect(active.body.id).toBe(running.id);
    expect((await api.get(user, running.id)).end_time).toBeNull();
  });

  it('refuses a start with 403 for a project the user is not a member of, 400 for an unknown project or tag; nothing written', async () => {
    const { user, project, frontend } = await setUp();
    const running = await api.start(user, { title: 'Running', project: project.id });
    const post = (body: object) => () => ctx.http.post('/api/time_entries/').set(user.auth).send(body);

    const forbidden = await refused(user, post({ title: 'x', project: catProject.id }), 403);
    expect(forbidden).toEqual({ detail: expect.any(String) });

    const unknownProject = await refused(user, post({ title: 'x', project: MISSING_ID }), 400);
    expect(unknownProject).toEqual({ project: [expect.stringContaining(String(MISSING_ID))] });

    for (const tags of [[catTag.id], [MISSING_ID], [frontend.id, catTag.id]]) {
      const body = await refused(user, post({ title: 'x', project: project.id, tags }), 400);
      expect(body, JSON.stringify(tags)).toEqual({ tags: [expect.stringContaining(String(tags.at(-1)))] });
    }

    // A manual entry must end after it starts; a running one cannot start in the future.
    for (const end of ['2025-01-01T09:00:00.000Z', '2025-01-01T10:00:00.000Z']) {
      const body = await refused(user, post({ title: 'x', project: project.id, start_time: '2025-01-01T10:00:00.000Z', end_time: end }), 400);
      expect(body).toEqual({ end_time: [END_BEFORE_START] });
    }
    const future = await refused(user, post({ title: 'x', project: project.id, start_time: new Date(Date.now() + 3_600_000).toISOString() }), 400);
    expect(Object.keys(future)).toEqual(['start_time']);

    // An entry lasts at most a year (366 days): a longer manual one, or a timer started longer ago, is refused.
    const year = 366 * 24 * 3_600_000;
    const longest = await api.start(user, { title: 'a year', project: project.id, start_time: '2024-01-01T00:00:00.000Z', end_time: new Date(Date.parse('2024-01-01T00:00:00.000Z') + year).toISOString() });
    expect(longest.duration).toBe('8784:00:00');
    expect(await refused(user, post({ title: 'x', project: project.id, start_time: '2024-01-01T00:00:00.000Z', end_time: '2025-01-01T00:00:00.001Z' }), 400)).toEqual({
      end_time: ['A time entry can last at most 8784 hours.'],
    });
    const ancient = await refused(user, post({ title: 'x', project: project.id, start_time: new Date(Date.now() - year - 60_000).toISOString() }), 400);
    expect(ancient).toEqual({ start_time: ['A time entry can last at most 8784 hours.'] });

    // Malformed bodies: 400 naming each field.
    const cases: Array<[unknown, string[]]> = [
      [{}, ['project', 'title']],
      [{ title: '', project: project.id }, ['title']],
      [{ title: '   ', project: project.id }, ['title']],
      [{ title: 'x'.repeat(201), project: project.id }, ['title']],
      [{ title: 'x', description: 'x'.repeat(5001), project: project.id }, ['description']],
      [{ title: 'x', project: String(project.id) }, ['project']],
      [{ title: 'x', project: 0 }, ['project']],
      [{ title: 'x', project: null }, ['project']],
      [{ title: 'x', project: project.id, tags: 'frontend' }, ['tags']],
      [{ title: 'x', project: project.id, tags: Array.from({ length: 51 }, (_, i) => i + 1) }, ['tags']],
      [{ title: 'x', project: project.id, start_time: 'yesterday' }, ['start_time']],
      [{ title: 'x', project: project.id, start_time: '2025-01-01T10:00:00' }, ['start_time']],
      [{ title: 'x', project: project.id, end_time: null }, ['end_time']],
      [{ title: 'x', project: project.id, user: 'someone' }, ['user']],
      [{ title: 'x', project: project.id, is_active: false }, ['is_active']],
    ];
    for (const [body, fields] of cases) {
      const answer = await refused(user, post(body as object), 400);
      expect(Object.keys(answer).sort(), JSON.stringify(body).slice(0, 80)).toEqual(fields);
    }
    // The running timer was never stopped by a refused start.
    expect((await api.get(user, running.id)).is_active).toBe(true);
  });

  it('gets an entry by id: the same as the list shows', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Project Development', '2025-11-29T14:30:00.000Z', '2025-11-29T16:45:00.000Z');
    expect(entry.duration).toBe('02:15:00');
    expect(await api.get(user, entry.id)).toEqual(entry);
    expect((await api.list(user)).results).toEqual([entry]);
    for (const id of ['999999', 'abc', '0', '-1', '1.5', '01', String(MISSING_ID + 1)]) {
      const res = await ctx.http.get(`/api/time_entries/${id}/`).set(user.auth).expect(404);
      expect(res.body, id).toEqual(NOT_FOUND);
    }
  });

  it('patches each field with the rules of a start, and refuses the rest without changing anything', async () => {
    const { user, project, frontend, development } = await setUp();
    const other = await api.project(user, 'Mobile App');
    const shared = await api.project(cat, 'Shared', [user]);
    const entry = await api.record(user, project.id, 'Draft', '2025-02-01T09:00:00.000Z', '2025-02-01T10:00:00.000Z', [frontend.id]);
    const patch = async (body: object, expected: Partial<TimeEntry>) => {
      const res = await ctx.http.patch(`/api/time_entries/${entry.id}/`).set(user.auth).send(body);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject(expected);
      expect(await api.get(user, entry.id)).toEqual(res.body);
      return res.body as TimeEntry;
    };

    await patch({ title: '  Final  ' }, { title: 'Final' });
    await patch({ description: 'Now described' }, { description: 'Now described', title: 'Final' });
    await patch({ project: other.id }, { project: 'Mobile App' });
    await patch({ project: shared.id }, { project: 'Shared' }); // a member, not the owner
    await patch({ tags: [development.id, frontend.id] }, { tags: ['development', 'frontend'] });
    await patch({ tags: [] }, { tags: [] });
    await patch({ start_time: '2025-02-01T08:30:00.000Z' }, { start_time: '2025-02-01T08:30:00.000Z', duration: '01:30:00' });
    await patch({ end_time: '2025-02-03T09:00:00.000Z' }, { end_time: '2025-02-03T09:00:00.000Z', duration: '48:30:00' });
    await patch(
      { start_time: '2025-03-01T12:00:00.000Z', end_time: '2025-03-01T12:00:01.000Z' },
      { start_time: '2025-03-01T12:00:00.000Z', end_time: '2025-03-01T12:00:01.000Z', duration: '00:00:01', actual_duration: '00:00:01' },
    );
    const current = await patch({}, {});

    const send = (body: object) => () => ctx.http.patch(`/api/time_entries/${entry.id}/`).set(user.auth).send(body);
    expect(await refused(user, send({ project: catProject.id }), 403)).toEqual({ detail: expect.any(String) });
    expect(await refused(user, send({ project: MISSING_ID }), 400)).toEqual({ project: [expect.any(String)] });
    expect(await refused(user, send({ tags: [catTag.id] }), 400)).toEqual({ tags: [expect.any(String)] });
    expect(await refused(user, send({ tags: [MISSING_ID] }), 400)).toEqual({ tags: [expect.any(String)] });
    // End before start, whichever side moves.
    expect(await refused(user, send({ end_time: '2025-03-01T11:00:00.000Z' }), 400)).toEqual({ end_time: [END_BEFORE_START] });
    expect(await refused(user, send({ start_time: '2025-03-01T12:00:01.000Z' }), 400)).toEqual({ end_time: [END_BEFORE_START] });
    expect(await refused(user, send({ start_time: '2025-03-02T00:00:00.000Z', end_time: '2025-03-01T00:00:00.000Z' }), 400)).toEqual({
      end_time: [END_BEFORE_START],
    });
    for (const [body, field] of [
      [{ title: '' }, 'title'],
      [{ title: null }, 'title'],
      [{ description: 7 }, 'description'],
      [{ project: null }, 'project'],
      [{ tags: null }, 'tags'],
      [{ start_time: 'soon' }, 'start_time'],
      [{ end_time: null }, 'end_time'],
      [{ duration: '01:00:00' }, 'duration'],
      [{ user: cat.username }, 'user'],
    ] as const) {
      const body2 = await refused(user, send(body), 400);
      expect(Object.keys(body2), JSON.stringify(body)).toEqual([field]);
    }
    // The project and tags of the last successful patch are still there.
    expect(await api.get(user, entry.id)).toEqual(current);
  });

  it('patches a running entry: end_time stops it; its start cannot move into the future', async () => {
    const { user, project } = await setUp();
    const running = await api.start(user, { title: 'Running', project: project.id, start_time: ago(30 * MINUTE) });
    const future = await refused(
      user,
      () => ctx.http.patch(`/api/time_entries/${running.id}/`).set(user.auth).send({ start_time: new Date(Date.now() + MINUTE).toISOString() }),
      400,
    );
    expect(Object.keys(future)).toEqual(['start_time']);

    const end = ago(10 * MINUTE);
    const stopped = await ctx.http.patch(`/api/time_entries/${running.id}/`).set(user.auth).send({ end_time: end }).expect(200);
    expect(stopped.body).toMatchObject({ end_time: end, is_active: false, duration: '00:20:00' });
    await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(404);
  });

  it('refuses a patch that would leave a recorded idle period outside the entry', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'With a break', '2025-04-01T09:00:00.000Z', '2025-04-01T12:00:00.000Z');
    await ctx.http
      .post(`/api/time_entries/${entry.id}/add-idle/`)
      .set(user.auth)
      .send({ start_time: '2025-04-01T09:30:00.000Z', end_time: '2025-04-01T10:00:00.000Z' })
      .expect(201);
    for (const body of [{ start_time: '2025-04-01T09:45:00.000Z' }, { end_time: '2025-04-01T09:50:00.000Z' }]) {
      const answer = await refused(user, () => ctx.http.patch(`/api/time_entries/${entry.id}/`).set(user.auth).send(body), 400);
      expect(answer, JSON.stringify(body)).toEqual({ non_field_errors: [expect.any(String)] });
    }
    // Up to the idle period's edges is fine.
    const res = await ctx.http
      .patch(`/api/time_entries/${entry.id}/`)
      .set(user.auth)
      .send({ start_time: '2025-04-01T09:30:00.000Z', end_time: '2025-04-01T10:00:00.000Z' })
      .expect(200);
    expect(res.body).toMatchObject({ duration: '00:30:00', idle_duration: '00:30:00', actual_duration: '00:00:00' });
  });

  it('deletes an entry with 204, with its tag links and idle periods; then every route answers 404', async () => {
    const { user, project, frontend } = await setUp();
    const entry = await api.record(user, project.id, 'Doomed', '2025-05-01T09:00:00.000Z', '2025-05-01T10:00:00.000Z', [frontend.id]);
    const kept = await api.record(user, project.id, 'Kept', '2025-05-02T09:00:00.000Z', '2025-05-02T10:00:00.000Z', [frontend.id]);
    await ctx.http
      .post(`/api/time_entries/${entry.id}/add-idle/`)
      .set(user.auth)
      .send({ start_time: '2025-05-01T09:10:00.000Z', end_time: '2025-05-01T09:20:00.000Z' })
      .expect(201);

    const res = await ctx.http.delete(`/api/time_entries/${entry.id}/`).set(user.auth).expect(204);
    expect(res.text).toBe('');
    const after = await api.snapshot(user.id);
    expect(after.entries.map((row) => row.id)).toEqual([kept.id]);
    expect(after.tags).toEqual([{ timeEntryId: kept.id, tagId: frontend.id }]);
    expect(after.idle).toEqual([]);
    // The tag itself stays.
    const tags = await ctx.http.get('/api/tags/').set(user.auth).expect(200);
    expect(tags.body).toContainEqual(frontend);

    const path = `/api/time_entries/${entry.id}/`;
    for (const request of [
      ctx.http.get(path),
      ctx.http.patch(path).send({ title: 'back' }),
      ctx.http.delete(path),
      ctx.http.post(`${path}stop/`),
      ctx.http.post(`${path}add-idle/`).send({ start_time: '2025-05-01T09:30:00.000Z', end_time: '2025-05-01T09:40:00.000Z' }),
    ]) {
      const gone = await request.set(user.auth);
      expect(gone.status).toBe(404);
      expect(gone.body).toEqual(NOT_FOUND);
    }
    expect((await api.list(user)).results.map((e) => e.id)).toEqual([kept.id]);
  });

  it('deleting the running entry leaves no active one, and a new timer can start', async () => {
    const { user, project } = await setUp();
    const running = await api.start(user, { title: 'Running', project: project.id });
    await ctx.http.delete(`/api/time_entries/${running.id}/`).set(user.auth).expect(204);
    const none = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(404);
    expect(none.body).toEqual(NO_ACTIVE);
    const next = await api.start(user, { title: 'Next', project: project.id });
    expect((await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(200)).body.id).toBe(next.id);
  });

  it('stops a running timer: 200 with end_time and duration; a second stop, or stopping a finished entry, is a 400', async () => {
    const { user, project } = await setUp();
    const running = await api.start(user, { title: 'Task Title', project: project.id, start_time: ago(90 * MINUTE) });
    const before = Date.now();
    const res = await ctx.http.post(`/api/time_entries/${running.id}/stop/`).set(user.auth).expect(200);
    const after = Date.now();
    const stopped: TimeEntry = res.body;
    expect(stopped).toEqual({
      ...running,
      end_time: expect.stringMatching(ISO_WITH_MS),
      duration: expect.stringMatching(/^01:30:0[01]$/),
      is_active: false,
      actual_duration: stopped.duration,
    });
    expect(Date.parse(stopped.end_time!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(stopped.end_time!)).toBeLessThanOrEqual(after);
    expect(await api.get(user, running.id)).toEqual(stopped);
    expect((await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(404)).body).toEqual(NO_ACTIVE);

    const again = await refused(user, () => ctx.http.post(`/api/time_entries/${running.id}/stop/`).set(user.auth), 400);
    expect(again).toEqual({ detail: expect.any(String) });
    const manual = await api.record(user, project.id, 'Manual', '2025-06-01T09:00:00.000Z', '2025-06-01T10:00:00.000Z');
    const notRunning = await refused(user, () => ctx.http.post(`/api/time_entries/${manual.id}/stop/`).set(user.auth), 400);
    expect(notRunning).toEqual({ detail: expect.any(String) });
    for (const id of [String(MISSING_ID), 'abc', '0']) {
      const missing = await ctx.http.post(`/api/time_entries/${id}/stop/`).set(user.auth).expect(404);
      expect(missing.body).toEqual(NOT_FOUND);
    }
  });

  it('current_active: 404 with SPEC’s detail until a timer runs, then that entry, and 404 again once it stopped', async () => {
    const { user, project } = await setUp();
    const none = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(404);
    expect(none.body).toEqual(NO_ACTIVE);
    await api.record(user, project.id, 'Finished', '2025-06-01T09:00:00.000Z', '2025-06-01T10:00:00.000Z');
    await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(404);

    const running = await api.start(user, { title: 'Current Task', description: 'Currently working on this', project: project.id });
    const active = await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(200);
    const { actual_duration: _, ...stable } = running;
    expect(active.body).toMatchObject(stable);
    await ctx.http.post(`/api/time_entries/${running.id}/stop/`).set(user.auth).expect(200);
    expect((await ctx.http.get('/api/time_entries/current_active/').set(user.auth).expect(404)).body).toEqual(NO_ACTIVE);
  });

  it('answers 401 on every route without a valid token', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Mine', '2025-06-01T09:00:00.000Z', '2025-06-01T10:00:00.000Z');
    const path = `/api/time_entries/${entry.id}/`;
    for (const auth of [{}, { Authorization: 'Token nope' }, { Authorization: 'Bearer nope' }]) {
      for (const request of [
        ctx.http.get('/api/time_entries/'),
        ctx.http.post('/api/time_entries/').send({ title: 'x', project: project.id }),
        ctx.http.get('/api/time_entries/current_active/'),
        ctx.http.get(path),
        ctx.http.patch(path).send({ title: 'x' }),
        ctx.http.delete(path),
        ctx.http.post(`${path}stop/`),
        ctx.http.post(`${path}add-idle/`).send({ start_time: '2025-06-01T09:10:00.000Z', end_time: '2025-06-01T09:20:00.000Z' }),
      ]) {
        const res = await request.set(auth);
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ detail: expect.any(String) });
      }
    }
    expect(await api.get(user, entry.id)).toEqual(entry);
  });

  it("isolation: another user's entry is a 404 on every route and never in their list or count", async () => {
    const { user: ann, project } = await setUp();
    const { user: bob, project: bobProject, frontend: bobTag } = await setUp();
    const annEntry = await api.record(ann, project.id, 'Ann finished', '2025-07-01T09:00:00.000Z', '2025-07-01T10:00:00.000Z');
    const bobFinished = await api.record(bob, bobProject.id, 'Bob finished', '2025-07-01T09:00:00.000Z', '2025-07-01T10:00:00.000Z', [
      bobTag.id,
    ]);
    const bobRunning = await api.start(bob, { title: 'Bob running', project: bobProject.id, tags: [bobTag.id] });

    for (const target of [bobFinished, bobRunning]) {
      const path = `/api/time_entries/${target.id}/`;
      const requests = [
        () => ctx.http.get(path).set(ann.auth),
        () => ctx.http.patch(path).set(ann.auth).send({ title: 'Taken' }),
        () => ctx.http.patch(path).set(ann.auth).send({}),
        () => ctx.http.delete(path).set(ann.auth),
        () => ctx.http.post(`${path}stop/`).set(ann.auth),
        () =>
          ctx.http
            .post(`${path}add-idle/`)
            .set(ann.auth)
            .send({ start_time: '2025-07-01T09:10:00.000Z', end_time: '2025-07-01T09:20:00.000Z' }),
      ];
      for (const request of requests) {
        expect(await refused(bob, request, 404)).toEqual(NOT_FOUND);
      }
    }
    // ann's list and count hold only her entry, whatever the filters; bob's running timer is not hers.
    const annList = await api.list(ann);
    expect(annList.count).toBe(1);
    expect(annList.results.map((e) => e.id)).toEqual([annEntry.id]);
    for (const query of ['is_active=true', `tags=${bobTag.id}`, 'start_date_after=2025-07-01', 'ordering=title&limit=100']) {
      const page = await api.list(ann, query);
      expect(page.results.every((e) => e.id === annEntry.id), query).toBe(true);
      expect(page.count, query).toBe(page.results.length);
    }
    expect(await ctx.http.get('/api/time_entries/current_active/').set(ann.auth).expect(404).then((r) => r.body)).toEqual(NO_ACTIVE);
    // ann starting a timer leaves bob's running.
    await api.start(ann, { title: 'Ann running', project: project.id });
    expect((await api.get(bob, bobRunning.id)).is_active).toBe(true);
    const bobList = await api.list(bob);
    expect(bobList.count).toBe(2);
    expect(bobList.results.map((e) => e.user)).toEqual([bob.username, bob.username]);
  });
});

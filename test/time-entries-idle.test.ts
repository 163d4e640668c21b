import { expect, it } from 'vitest';
import { describeApi } from './support/api';
import { END_BEFORE_START, NOT_FOUND, secondsOf, timeEntryApi } from './support/time-entry-fixtures';

const MISSING_ID = 2_147_483_647;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const MINUTE = 60_000;

// POST /api/time_entries/{id}/add-idle/: idle periods within an entry, in whole seconds, never
// overlapping; the entry's idle and actual durations follow.
describeApi('time entries: idle periods', (ctx) => {
  const api = timeEntryApi(ctx);
  const { setUp, refused } = api;

  it('add-idle: 201 with the idle total and actual duration; periods add up; the entry shows them', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Project Development', '2025-11-29T14:30:00.000Z', '2025-11-29T16:45:00.000Z');
    const addIdle = (start: string, end: string) =>
      ctx.http.post(`/api/time_entries/${entry.id}/add-idle/`).set(user.auth).send({ start_time: start, end_time: end });

    const first = await addIdle('2025-11-29T14:30:00.000Z', '2025-11-29T15:00:00.000Z').expect(201);
    expect(first.body).toEqual({ status: 'idle_recorded', total_idle_duration: '00:30:00', actual_duration: '01:45:00' });
    // Touching the first one is not overlapping it; a period may end with the entry.
    const second = await addIdle('2025-11-29T15:00:00.000Z', '2025-11-29T15:15:00.000Z').expect(201);
    expect(second.body).toEqual({ status: 'idle_recorded', total_idle_duration: '00:45:00', actual_duration: '01:30:00' });
    const third = await addIdle('2025-11-29T16:40:00.000Z', '2025-11-29T16:45:00.000Z').expect(201);
    expect(third.body).toEqual({ status: 'idle_recorded', total_idle_duration: '00:50:00', actual_duration: '01:25:00' });

    expect(await api.get(user, entry.id)).toEqual({ ...entry, idle_duration: '00:50:00', actual_duration: '01:25:00' });
    expect((await api.list(user)).results[0]).toMatchObject({ idle_duration: '00:50:00', actual_duration: '01:25:00' });
    const { idle } = await api.snapshot(user.id);
    expect(idle.map((row) => [row.startTime.toISOString(), row.endTime.toISOString()])).toEqual([
      ['2025-11-29T14:30:00.000Z', '2025-11-29T15:00:00.000Z'],
      ['2025-11-29T15:00:00.000Z', '2025-11-29T15:15:00.000Z'],
      ['2025-11-29T16:40:00.000Z', '2025-11-29T16:45:00.000Z'],
    ]);
  });

  it('add-idle cuts times to whole seconds', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Precise', '2025-08-01T10:00:00.000Z', '2025-08-01T11:00:00.000Z');
    const res = await ctx.http
      .post(`/api/time_entries/${entry.id}/add-idle/`)
      .set(user.auth)
      .send({ start_time: '2025-08-01T10:15:00.900Z', end_time: '2025-08-01T10:20:00.100Z' })
      .expect(201);
    // 10:15:00 to 10:20:00: five whole minutes, not 4:59.2.
    expect(res.body).toEqual({ status: 'idle_recorded', total_idle_duration: '00:05:00', actual_duration: '00:55:00' });
    const { idle } = await api.snapshot(user.id);
    expect(idle.map((row) => [row.startTime.toISOString(), row.endTime.toISOString()])).toEqual([
      ['2025-08-01T10:15:00.000Z', '2025-08-01T10:20:00.000Z'],
    ]);
    // Within one second, start and end become the same instant: not after the start.
    const same = await refused(
      user,
      () =>
        ctx.http
          .post(`/api/time_entries/${entry.id}/add-idle/`)
          .set(user.auth)
          .send({ start_time: '2025-08-01T10:30:00.100Z', end_time: '2025-08-01T10:30:00.900Z' }),
      400,
    );
    expect(same).toEqual({ end_time: [END_BEFORE_START] });
  });

  it('add-idle refuses periods that end before they start, lie outside the entry or overlap one recorded; nothing changes', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Bounded', '2025-09-01T09:00:00.000Z', '2025-09-01T12:00:00.000Z');
    const add = (start_time: unknown, end_time: unknown, extra: object = {}) => () =>
      ctx.http.post(`/api/time_entries/${entry.id}/add-idle/`).set(user.auth).send({ start_time, end_time, ...extra });
    await add('2025-09-01T10:00:00.000Z', '2025-09-01T10:30:00.000Z')().expect(201);

    expect(await refused(user, add('2025-09-01T11:00:00.000Z', '2025-09-01T10:59:59.000Z'), 400)).toEqual({ end_time: [END_BEFORE_START] });
    expect(await refused(user, add('2025-09-01T11:00:00.000Z', '2025-09-01T11:00:00.000Z'), 400)).toEqual({ end_time: [END_BEFORE_START] });
    expect(Object.keys(await refused(user, add('2025-09-01T08:59:59.000Z', '2025-09-01T09:10:00.000Z'), 400))).toEqual(['start_time']);
    expect(Object.keys(await refused(user, add('2025-09-01T08:00:00.000Z', '2025-09-01T08:30:00.000Z'), 400))).toEqual(['start_time']);
    expect(Object.keys(await refused(user, add('2025-09-01T11:50:00.000Z', '2025-09-01T12:00:01.000Z'), 400))).toEqual(['end_time']);
    expect(Object.keys(await refused(user, add('2025-09-01T13:00:00.000Z', '2025-09-01T13:30:00.000Z'), 400))).toEqual(['end_time']);

    // Overlaps, from every side: the answer names the period already recorded.
    for (const [start, end] of [
      ['2025-09-01T09:50:00.000Z', '2025-09-01T10:00:01.000Z'],
      ['2025-09-01T10:29:59.000Z', '2025-09-01T10:40:00.000Z'],
      ['2025-09-01T10:10:00.000Z', '2025-09-01T10:20:00.000Z'],
      ['2025-09-01T09:30:00.000Z', '2025-09-01T11:00:00.000Z'],
      ['2025-09-01T10:00:00.000Z', '2025-09-01T10:30:00.000Z'],
    ]) {
      const body = await refused(user, add(start, end), 400);
      expect(Object.keys(body), start).toEqual(['non_field_errors']);
      const [message] = body.non_field_errors as string[];
      expect(message).toContain('2025-09-01T10:00:00.000Z');
      expect(message).toContain('2025-09-01T10:30:00.000Z');
    }

    for (const [body, fields] of [
      [{ start_time: '2025-09-01T09:10:00.000Z' }, ['end_time']],
      [{}, ['end_time', 'start_time']],
      [{ start_time: 'later', end_time: '2025-09-01T09:20:00.000Z' }, ['start_time']],
      [{ start_time: '2025-09-01T09:10:00.000Z', end_time: 1_725_181_200_000 }, ['end_time']],
      [{ start_time: '2025-09-01T09:10:00.000Z', end_time: '2025-09-01T09:20:00.000Z', entry: 1 }, ['entry']],
    ] as const) {
      const answer = await refused(user, () => ctx.http.post(`/api/time_entries/${entry.id}/add-idle/`).set(user.auth).send(body), 400);
      expect(Object.keys(answer).sort(), JSON.stringify(body)).toEqual(fields);
    }
    const missing = await ctx.http
      .post(`/api/time_entries/${MISSING_ID}/add-idle/`)
      .set(user.auth)
      .send({ start_time: '2025-09-01T09:10:00.000Z', end_time: '2025-09-01T09:20:00.000Z' })
      .expect(404);
    expect(missing.body).toEqual(NOT_FOUND);
    expect((await api.get(user, entry.id)).idle_duration).toBe('00:30:00');
  });

  it('add-idle: of 10 concurrent requests for the same period exactly one is recorded', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Raced', '2025-10-01T09:00:00.000Z', '2025-10-01T12:00:00.000Z');
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        ctx.http
          .post(`/api/time_entries/${entry.id}/add-idle/`)
          .set(user.auth)
          // Each overlaps every other: 10:00 + i minutes, for half an hour.
          .send({ start_time: `2025-10-01T10:0${i}:00.000Z`, end_time: `2025-10-01T10:3${i}:00.000Z` }),
      ),
    );
    expect(responses.map((res) => res.status).sort()).toEqual([201, ...Array(9).fill(400)]);
    expect(responses.find((res) => res.status === 201)!.body).toEqual({
      status: 'idle_recorded',
      total_idle_duration: '00:30:00',
      actual_duration: '02:30:00',
    });
    expect((await api.get(user, entry.id)).idle_duration).toBe('00:30:00');
    expect((await api.snapshot(user.id)).idle).toHaveLength(1);
  });

  it('add-idle on a running entry: up to now, never into the future; actual duration is the time so far minus idle', async () => {
    const { user, project } = await setUp();
    const started = ago(60 * MINUTE);
    const running = await api.start(user, { title: 'Running', project: project.id, start_time: started });
    const add = (start_time: string, end_time: string) => () =>
      ctx.http.post(`/api/time_entries/${running.id}/add-idle/`).set(user.auth).send({ start_time, end_time });

    const future = await refused(user, add(ago(5 * MINUTE), new Date(Date.now() + MINUTE).toISOString()), 400);
    expect(Object.keys(future)).toEqual(['end_time']);
    const early = await refused(user, add(new Date(Date.parse(started) - MINUTE).toISOString(), ago(50 * MINUTE)), 400);
    expect(Object.keys(early)).toEqual(['start_time']);

    // The server reads its clock between these two: however long the request takes.
    const elapsedBefore = (Date.now() - Date.parse(started)) / 1000;
    const res = await add(ago(50 * MINUTE), ago(40 * MINUTE))().expect(201);
    const elapsedAfter = (Date.now() - Date.parse(started)) / 1000;
    expect(res.body).toMatchObject({ status: 'idle_recorded', total_idle_duration: '00:10:00' });
    const actual = secondsOf(res.body.actual_duration);
    expect(actual).toBeGreaterThanOrEqual(Math.floor(elapsedBefore) - 600);
    expect(actual).toBeLessThanOrEqual(Math.ceil(elapsedAfter) - 600);
    expect((await api.get(user, running.id)).is_active).toBe(true);
  });

  it('add-idle takes a period that starts exactly at the entry’s start_time, milliseconds and all', async () => {
    const { user, project } = await setUp();
    // Started at …:SS.500: cut to the second, the period's start would seem to be before the entry's.
    const started = new Date(Math.floor((Date.now() - 10 * MINUTE) / 1000) * 1000 + 500).toISOString();
    const running = await api.start(user, { title: 'Idle from the start', project: project.id, start_time: started });
    const res = await ctx.http
      .post(`/api/time_entries/${running.id}/add-idle/`)
      .set(user.auth)
      .send({ start_time: running.start_time, end_time: new Date(Date.parse(started) + 5 * MINUTE).toISOString() })
      .expect(201);
    // Recorded in whole seconds: from …:SS.000 to …:SS.000 five minutes on.
    expect(res.body.total_idle_duration).toBe('00:05:00');
    const [idle] = (await api.snapshot(user.id)).idle;
    expect(idle.startTime.getTime()).toBe(Date.parse(started) - 500);
    // A millisecond earlier is before the entry.
    const early = await refused(
      user,
      () =>
        ctx.http
          .post(`/api/time_entries/${running.id}/add-idle/`)
          .set(user.auth)
          .send({ start_time: new Date(Date.parse(started) - 1).toISOString(), end_time: new Date(Date.parse(started) + 6 * MINUTE).toISOString() }),
      400,
    );
    expect(Object.keys(early)).toEqual(['start_time']);
  });

  it('an idle period from the entry’s start, milliseconds and all, does not block later edits of the entry', async () => {
    const { user, project } = await setUp();
    const started = new Date(Math.floor((Date.now() - 10 * MINUTE) / 1000) * 1000 + 500).toISOString();
    const running = await api.start(user, { title: 'Idle from the start', project: project.id, start_time: started });
    await ctx.http
      .post(`/api/time_entries/${running.id}/add-idle/`)
      .set(user.auth)
      .send({ start_time: started, end_time: new Date(Date.parse(started) + 5 * MINUTE).toISOString() })
      .expect(201);
    // Recorded from …:SS.000, half a second before the entry's start: still within it as added.
    const renamed = await ctx.http.patch(`/api/time_entries/${running.id}/`).set(user.auth).send({ title: 'Renamed' });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body).toMatchObject({ title: 'Renamed', start_time: started, idle_duration: '00:05:00' });
    const end = new Date(Date.parse(started) + 8 * MINUTE).toISOString();
    const stopped = await ctx.http.patch(`/api/time_entries/${running.id}/`).set(user.auth).send({ end_time: end });
    expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
    // Moving the start later than the idle period's is still refused.
    const later = await refused(
      user,
      () => ctx.http.patch(`/api/time_entries/${running.id}/`).set(user.auth).send({ start_time: new Date(Date.parse(started) + 1000).toISOString() }),
      400,
    );
    expect(Object.keys(later)).toEqual(['non_field_errors']);
  });

  it('runs the addIdleSession example of SPEC.md as written, with fetch and a Bearer token', async () => {
    const { user, project } = await setUp();
    const entry = await api.record(user, project.id, 'Project Development', '2025-11-29T14:30:00.000Z', '2025-11-29T16:45:00.000Z');
    const base = await ctx.listen();
    // The function exactly as SPEC.md shows it; it reads `authToken` and calls `fetch` with a path,
    // as in a browser, so the page's origin is supplied here.
    const source = `async function addIdleSession(timeEntryId, idleStart, idleEnd) {
	const response = await fetch(\`/api/time_entries/\${timeEntryId}/add-idle/\`, {
		method: 'POST',
		headers: {
			Authorization: \`Bearer \${authToken}\`,
			'Content-Type': 'application/json'
		},
		body: JSON.stringify({
			start_time: idleStart,
			end_time: idleEnd
		})
	});

	const data = await response.json();
	console.log('Idle session recorded:', data);
	console.log(\`Total idle time for this entry: \${data.total_idle_duration}\`);
}`;
    const logged: unknown[][] = [];
    const pageFetch = (path: string, init: RequestInit) => fetch(new URL(path, base), init);
    const pageConsole = { log: (...args: unknown[]) => void logged.push(args) };
    const addIdleSession = new Function('fetch', 'authToken', 'console', `return ${source}`)(pageFetch, user.token, pageConsole) as (
      id: number,
      start: string,
      end: string,
    ) => Promise<void>;

    await addIdleSession(entry.id, '2025-11-29T14:30:00.000Z', '2025-11-29T15:00:00.000Z');
    expect(logged).toEqual([
      ['Idle session recorded:', { status: 'idle_recorded', total_idle_duration: '00:30:00', actual_duration: '01:45:00' }],
      ['Total idle time for this entry: 00:30:00'],
    ]);
    expect((await api.get(user, entry.id)).idle_duration).toBe('00:30:00');
  });
});

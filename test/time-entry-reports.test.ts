import { parse } from 'csv-parse/sync';
import { pino } from 'pino';
import { beforeAll, expect, it, vi } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createServices } from '../server/app';
import { describeApi, STRONG_PASSWORD, uniqueName, type TestUser } from './support/api';
import { dyingDatabase } from './support/dying-database';
import { SLACK_MS } from './support/waiting';

const ENTRIES = '/api/time_entries/';
const HOUR = 3600_000;

interface Fixture {
  user: TestUser;
  projects: { web: number; ops: number };
  tags: { dev: number; review: number };
}

const seconds = (duration: string) => {
  const [h, m, s] = duration.split(':').map(Number);
  return h * 3600 + m * 60 + s;
};

describeApi('time entry reports', (ctx) => {
  /** A user with two projects, two tags and a few finished entries over two days, plus a running one. */
  async function fixture(): Promise<Fixture> {
    const user = await ctx.createUser();
    const post = async (path: string, body: object) => (await ctx.http.post(path).set(user.auth).send(body).expect(201)).body;
    const projects = { web: (await post('/api/projects/', { title: 'Web' })).id, ops: (await post('/api/projects/', { title: 'Ops' })).id };
    const tags = { dev: (await post('/api/tags/', { title: 'dev' })).id, review: (await post('/api/tags/', { title: 'review' })).id };
    const finished = [
      { title: 'build', project: projects.web, tags: [tags.dev], start_time: '2025-11-28T09:00:00Z', end_time: '2025-11-28T11:30:00Z' },
      { title: 'pair', project: projects.web, tags: [tags.dev, tags.review], start_time: '2025-11-28T23:30:00Z', end_time: '2025-11-29T01:00:00Z' },
      { title: 'deploy', project: projects.ops, tags: [], start_time: '2025-11-29T14:00:00Z', end_time: '2025-11-29T14:45:10Z' },
    ];
    for (const entry of finished) await post(ENTRIES, entry);
    const pair = (await ctx.http.get(`${ENTRIES}?ordering=title`).set(user.auth).expect(200)).body.results.find(
      (entry: { title: string }) => entry.title === 'pair',
    );
    await post(`${ENTRIES}${pair.id}/add-idle/`, { start_time: '2025-11-28T23:40:00Z', end_time: '2025-11-28T23:55:00Z' });
    await post(ENTRIES, { title: 'running', project: projects.ops, tags: [tags.review], start_time: new Date(Date.now() - HOUR).toISOString() });
    return { user, projects, tags };
  }

  let f: Fixture;
  beforeAll(async () => {
    f = await fixture();
  });

  const listAll = async (user: TestUser, query = '') =>
    (await ctx.http.get(`${ENTRIES}?limit=100${query}`).set(user.auth).expect(200)).body.results as Array<Record<string, any>>;

  const totalsOf = (entries: Array<Record<string, any>>) => ({
    count: entries.length,
    duration: entries.reduce((sum, entry) => sum + (entry.duration ? seconds(entry.duration) : 0), 0),
    idle: entries.reduce((sum, entry) => sum + seconds(entry.idle_duration), 0),
    actual: entries.reduce((sum, entry) => sum + seconds(entry.actual_duration), 0),
  });
  const secondsOf = (totals: Record<string, any>) => ({
    count: totals.count,
    duration: seconds(totals.duration),
    idle: seconds(totals.idle_duration),
    actual: seconds(totals.actual_duration),
  });
  /** The running entry's actual time grows between two requests: allow the seconds that passed. */
  const closeTo = (got: ReturnType<typeof secondsOf>, want: ReturnType<typeof totalsOf>) => {
    expect({ ...got, actual: 0 }).toEqual({ ...want, actual: 0 });
    expect(got.actual - want.actual).toBeGreaterThanOrEqual(0);
    // The list and the summaries a test compares are seconds apart, more on a loaded machine.
    expect(got.actual - want.actual).toBeLessThanOrEqual((2 * SLACK_MS) / 1000);
  };

  it('sums each project, tag and UTC day to the totals of the entries the list shows', async () => {
    const entries = await listAll(f.user);
    expect(entries).toHaveLength(4);
    const groups: Record<string, (entry: Record<string, any>) => string[]> = {
      project: (entry) => [entry.project],
      tag: (entry) => (entry.tags.length ? entry.tags : ['(no tag)']),
      day: (entry) => [entry.start_time.slice(0, 10)],
    };
    for (const [groupBy, labelsOf] of Object.entries(groups)) {
      const res = await ctx.http.get(`${ENTRIES}summary/?group_by=${groupBy}`).set(f.user.auth).expect(200);
      expect(res.body.group_by).toBe(groupBy);
      closeTo(secondsOf(res.body.total), totalsOf(entries));
      const labels = [...new Set(entries.flatMap(labelsOf))].sort();
      expect(res.body.groups.map((group: { label: string }) => group.label), groupBy).toEqual(labels);
      for (const group of res.body.groups) {
        closeTo(secondsOf(group), totalsOf(entries.filter((entry) => labelsOf(entry).includes(group.label))));
      }
    }
    // Keys: project and tag ids (null without one), days as YYYY-MM-DD.
    const byProject = (await ctx.http.get(`${ENTRIES}summary/`).set(f.user.auth).expect(200)).body;
    expect(byProject.group_by).toBe('project');
    expect(byProject.groups.map((group: { key: number }) => group.key).sort()).toEqual([f.projects.web, f.projects.ops].sort());
    const byTag = (await ctx.http.get(`${ENTRIES}summary/?group_by=tag`).set(f.user.auth).expect(200)).body;
    expect(byTag.groups.find((group: { label: string }) => group.label === '(no tag)').key).toBeNull();
    // The entry from 23:30 to 01:00 belongs to the day it started on.
    const byDay = (await ctx.http.get(`${ENTRIES}summary/?group_by=day`).set(f.user.auth).expect(200)).body;
    expect(byDay.groups[0]).toMatchObject({ key: '2025-11-28', count: 2, duration: '04:00:00', idle_duration: '00:15:00', actual_duration: '03:45:00' });
  });

  it('takes the list’s filters, and refuses what the list refuses', async () => {
    const filters = [`project=${f.projects.web}`, 'start_date_after=2025-11-29', `tags=${f.tags.review}`, 'is_active=false', 'duration_min=01:00:00'];
    for (const filter of filters) {
      const entries = await listAll(f.user, `&${filter}`);
      const summary = (await ctx.http.get(`${ENTRIES}summary/?group_by=day&${filter}`).set(f.user.auth).expect(200)).body;
      closeTo(secondsOf(summary.total), totalsOf(entries));
    }
    const other = await ctx.createUser();
    const foreign = (await ctx.http.post('/api/projects/').set(other.auth).send({ title: 'Theirs' }).expect(201)).body.id;
    await ctx.http.get(`${ENTRIES}summary/?project=${foreign}`).set(f.user.auth).expect(403);
    for (const bad of ['group_by=week', 'start_date_after=2025-13-01', 'duration_min=1h', 'ordering=title', 'cursor=x']) {
      const res = await ctx.http.get(`${ENTRIES}summary/?${bad}`).set(f.user.auth).expect(400);
      expect(Object.keys(res.body)).toEqual([bad.split('=')[0]]);
    }
    // Another user's entries never count.
    const empty = (await ctx.http.get(`${ENTRIES}summary/`).set(other.auth).expect(200)).body;
    expect(empty).toEqual({ group_by: 'project', groups: [], total: { count: 0, duration: '00:00:00', idle_duration: '00:00:00', actual_duration: '00:00:00' } });
  });

  it('adds up the actual durations the entries show, when idle time cut to whole seconds outlasts an entry by a second', async () => {
    const user = await ctx.createUser();
    const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: 'Cut' }).expect(201)).body.id;
    const record = async (start_time: string, end_time: string) =>
      (await ctx.http.post(ENTRIES).set(user.auth).send({ title: 'entry', project, start_time, end_time }).expect(201)).body;
    // 29:59.9 long, so 00:29:59; idle all of it, cut to the second: 10:00:00 to 10:30:00, 00:30:00.
    const cut = await record('2025-11-28T10:00:00.500Z', '2025-11-28T10:30:00.400Z');
    const idle = await ctx.http.post(`${ENTRIES}${cut.id}/add-idle/`).set(user.auth).send({ start_time: cut.start_time, end_time: cut.end_time }).expect(201);
    expect(idle.body).toEqual({ status: 'idle_recorded', total_idle_duration: '00:30:00', actual_duration: '00:00:00' });
    await record('2025-11-28T12:00:00Z', '2025-11-28T13:00:00Z');
    const entries = await listAll(user);
    expect(entries.map((entry) => entry.actual_duration)).toEqual(['01:00:00', '00:00:00']);
    for (const groupBy of ['project', 'tag', 'day']) {
      const summary = (await ctx.http.get(`${ENTRIES}summary/?group_by=${groupBy}`).set(user.auth).expect(200)).body;
      expect(secondsOf(summary.total), groupBy).toEqual(totalsOf(entries));
      expect(summary.groups.map(secondsOf), groupBy).toEqual([totalsOf(entries)]);
    }
  });

  it('adds up one moment: the projects’ counts make the total’s, also while the user switches timers between them', async () => {
    const user = await ctx.createUser();
    const project = async (title: string) => (await ctx.http.post('/api/projects/').set(user.auth).send({ title }).expect(201)).body.id;
    const projects = [await project('One'), await project('Two')];
    // Each start stops the running timer: one entry moves from running to finished, another starts.
    let switching = true;
    let switches = 0;
    const switchingTimers = (async () => {
      while (switching) await ctx.http.post(ENTRIES).set(user.auth).send({ title: 'switch', project: projects[switches++ % 2] }).expect(201);
    })();
    try {
      for (let i = 0; i < 40; i++) {
        const { groups, total } = (await ctx.http.get(`${ENTRIES}summary/`).set(user.auth).expect(200)).body;
        expect(groups.reduce((sum: number, group: { count: number }) => sum + group.count, 0), `summary ${i}`).toBe(total.count);
      }
    } finally {
      switching = false;
      await switchingTimers;
    }
    expect(switches).toBeGreaterThan(10);
  });

  it('exports the entries the list shows as CSV that a CSV parser reads back, formulas neutralised', async () => {
    const user = await ctx.createUser();
    const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: '=HYPERLINK("http://x")' }).expect(201)).body.id;
    const tag = (await ctx.http.post('/api/tags/').set(user.auth).send({ title: '@mention' }).expect(201)).body.id;
    const tricky = [
      { title: '=1+1', description: 'quote " and comma, and\nnewline' },
      { title: '+SUM(A1)', description: '-2' },
      { title: 'plain', description: '\ttabbed' },
      { title: '-minus', description: '\rreturned' },
    ];
    for (const [i, entry] of tricky.entries()) {
      const start = new Date(Date.UTC(2025, 10, 1 + i, 9));
      await ctx.http
        .post(ENTRIES)
        .set(user.auth)
        .send({ ...entry, project, tags: [tag], start_time: start.toISOString(), end_time: new Date(start.getTime() + HOUR).toISOString() })
        .expect(201);
    }
    const res = await ctx.http.get(`${ENTRIES}export.csv`).set(user.auth).expect(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toContain('attachment');
    const rows: Array<Record<string, string>> = parse(res.text, { columns: true });
    const listed = await listAll(user);
    expect(rows.map((row) => Number(row.id))).toEqual(listed.map((entry) => entry.id));
    // Every character README names as a formula's first is among the cells: = + - @ tab, carriage return.
    expect(listed.map((entry) => entry.description)).toContain('\rreturned');
    const unescape = (cell: string) => (/^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell);
    for (const [i, row] of rows.entries()) {
      const entry = listed[i];
      expect(unescape(row.title)).toBe(entry.title);
      expect(unescape(row.description)).toBe(entry.description);
      expect(unescape(row.project)).toBe(entry.project);
      expect(unescape(row.tags)).toBe(entry.tags.join(', '));
      expect(row).toMatchObject({ start_time: entry.start_time, end_time: entry.end_time, duration: entry.duration, is_active: 'false' });
      // Nothing a spreadsheet would run.
      for (const cell of Object.values(row)) expect(cell, cell).not.toMatch(/^[=+\-@\t\r]/);
    }
    expect(Object.keys(rows[0])).toEqual([
      'id', 'title', 'description', 'project', 'tags', 'start_time', 'end_time', 'duration', 'idle_duration', 'actual_duration', 'is_active',
    ]);
  });

  it('streams an export longer than one batch, in order, each entry once; filters apply', async () => {
    const user = await ctx.createUser();
    const { t } = ctx.database.store;
    const base = Date.UTC(2024, 0, 1);
    // 1,203 entries, with start times that collide, so batches are cut inside a run of equal keys.
    const rows = Array.from({ length: 1203 }, (_, i) => ({
      userId: user.id,
      projectId: null,
      title: `entry ${i}`,
      description: '',
      startTime: new Date(base + Math.floor(i / 3) * 60_000),
      endTime: new Date(base + Math.floor(i / 3) * 60_000 + 30_000),
      idleSeconds: 0,
      createdAt: new Date(),
    }));
    await ctx.database.store.insertAll(t.timeEntries, rows);
    const csv: Array<Record<string, string>> = parse((await ctx.http.get(`${ENTRIES}export.csv`).set(user.auth).expect(200)).text, { columns: true });
    expect(csv).toHaveLength(1203);
    expect(new Set(csv.map((row) => row.id)).size).toBe(1203);
    const keys = csv.map((row) => [Date.parse(row.start_time), Number(row.id)] as const);
    for (let i = 1; i < keys.length; i++) {
      const [time, id] = keys[i];
      const [previousTime, previousId] = keys[i - 1];
      expect(time < previousTime || (time === previousTime && id < previousId), `row ${i}`).toBe(true);
    }
    const filtered = parse((await ctx.http.get(`${ENTRIES}export.csv?start_date_after=2024-01-01&start_date_before=2024-01-01&duration_min=30`).set(user.auth).expect(200)).text, {
      columns: true,
    });
    expect(filtered).toHaveLength(1203);
    // Nothing matches: the header row alone.
    const none = (await ctx.http.get(`${ENTRIES}export.csv?start_date_after=2024-01-02`).set(user.auth).expect(200)).text;
    expect(none.trim().split('\n')).toHaveLength(1);
    expect(none).toMatch(/^id,title,/);
    await ctx.http.get(`${ENTRIES}export.csv?duration_min=soon`).set(user.auth).expect(400);
    await ctx.http.get(`${ENTRIES}export.csv?project=${f.projects.web}`).set(user.auth).expect(403);
  });

  it('a failure half-way through an export cuts the download short, and the server goes on serving', async () => {
    const user = await ctx.createUser();
    const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: 'Half' }).expect(201)).body.id;
    for (const day of [1, 2]) {
      await ctx.http
        .post(ENTRIES)
        .set(user.auth)
        .send({ title: `day ${day}`, project, start_time: `2025-11-0${day}T09:00:00Z`, end_time: `2025-11-0${day}T10:00:00Z` })
        .expect(201);
    }
    const reports = ctx.services.timeEntryReports;
    const exportViews = reports.exportViews.bind(reports);
    // The first entry is read, then the database goes away.
    const failing = vi.spyOn(reports, 'exportViews').mockImplementation(async function* (...args) {
      for await (const view of exportViews(...args)) {
        yield view;
        throw new Error('the database went away');
      }
    });
    try {
      const url = await ctx.listen();
      const res = await fetch(`${url}${ENTRIES}export.csv`, { headers: user.auth });
      expect(res.status).toBe(200);
      await expect(res.text()).rejects.toThrow();
    } finally {
      failing.mockRestore();
    }
    const csv: Array<Record<string, string>> = parse((await ctx.http.get(`${ENTRIES}export.csv`).set(user.auth).expect(200)).text, { columns: true });
    expect(csv.map((row) => row.title)).toEqual(['day 2', 'day 1']);
  });

  it('restarts an entry as a new running one with its title, description, project and tags', async () => {
    const user = await ctx.createUser();
    const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: 'Again' }).expect(201)).body.id;
    const tag = (await ctx.http.post('/api/tags/').set(user.auth).send({ title: 'again' }).expect(201)).body.id;
    const done = (
      await ctx.http
        .post(ENTRIES)
        .set(user.auth)
        .send({ title: 'Write', description: 'chapter 2', project, tags: [tag], start_time: '2025-11-29T10:00:00Z', end_time: '2025-11-29T11:00:00Z' })
        .expect(201)
    ).body;
    const running = (await ctx.http.post(ENTRIES).set(user.auth).send({ title: 'Other', project }).expect(201)).body;
    const restarted = (await ctx.http.post(`${ENTRIES}${done.id}/restart/`).set(user.auth).expect(201)).body;
    expect(restarted).toMatchObject({ title: 'Write', description: 'chapter 2', project: 'Again', tags: ['again'], is_active: true, end_time: null });
    expect(restarted.id).not.toBe(done.id);
    const other = (await ctx.http.get(`${ENTRIES}${running.id}/`).set(user.auth).expect(200)).body;
    expect(other.is_active).toBe(false);
    expect(other.end_time).toBe(restarted.start_time);
    expect((await ctx.http.get(`${ENTRIES}current_active/`).set(user.auth).expect(200)).body.id).toBe(restarted.id);
    // Someone else's entry is not found, and nothing starts.
    const stranger = await ctx.createUser();
    await ctx.http.post(`${ENTRIES}${done.id}/restart/`).set(stranger.auth).expect(404);
    await ctx.http.get(`${ENTRIES}current_active/`).set(stranger.auth).expect(404);
  });

  it('warns of a timer running for 8 hours once, however many instances sweep at once', async () => {
    const user = await ctx.createUser();
    const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: 'Long' }).expect(201)).body.id;
    const started = Date.now() - 9 * HOUR;
    await ctx.http.post(ENTRIES).set(user.auth).send({ title: 'Forgot to stop', project, start_time: new Date(started).toISOString() }).expect(201);
    // A second instance: on Postgres its own connection pool to the same database (in-memory
    // SQLite has one connection), with services of its own.
    const secondStore = ctx.database.dialect === 'postgres' ? await openDatabase(ctx.database.url) : ctx.database.store;
    const instances = [ctx.services.longTimers, createServices({ store: secondStore, logger: pino({ level: 'silent' }), rateLimits: false }).longTimers];
    const warnings = async () =>
      (await ctx.http.get('/api/notifications/').set(user.auth).expect(200)).body
        .filter((notification: { type: string }) => notification.type === 'WARNING')
        .map((notification: { message: string }) => notification.message);
    try {
      // Seven hours in, nothing; at nine, one warning between all the sweeps running at once.
      await ctx.services.longTimers.sweep(new Date(started + 7 * HOUR));
      expect(await warnings()).toEqual([]);
      const claimed = await Promise.all([...instances, ...instances].map((instance) => instance.sweep()));
      expect(claimed.filter((count) => count > 0)).toHaveLength(1);
      expect(await warnings()).toEqual(['Timer running for 8 hours: Forgot to stop']);
      // Later sweeps leave the claimed entry alone.
      await Promise.all(instances.map((instance) => instance.sweep(new Date(Date.now() + 24 * HOUR))));
      expect(await warnings()).toEqual(['Timer running for 8 hours: Forgot to stop']);
    } finally {
      if (secondStore !== ctx.database.store) await secondStore.close();
    }
  });

  it('leaves a timer unclaimed when its warning was not written: a sweep that dies between the two is as if it never ran', async () => {
    const database = await dyingDatabase(ctx.database, 'insert into "notifications"');
    const servicesOn = (store: Store) => createServices({ store, logger: pino({ level: 'silent' }), rateLimits: false });
    const before = servicesOn(database.store);
    const user = await before.auth.register({ username: uniqueName('sweep'), password: STRONG_PASSWORD });
    const project = await before.projects.create(user.id, { title: 'Long', description: '' });
    const start_time = new Date(Date.now() - 9 * HOUR).toISOString();
    await before.timeEntries.start(user, { title: 'Forgot to stop', description: '', project: project.id, tags: [], start_time });
    await expect(before.longTimers.sweep()).rejects.toThrow('the process died');

    const after = servicesOn(await database.restart());
    try {
      await after.longTimers.sweep();
      const notifications = (await after.notifications.list(user.id, { limit: 10 })).items;
      expect(notifications.map(({ type, message }) => ({ type, message }))).toEqual([{ type: 'WARNING', message: 'Timer running for 8 hours: Forgot to stop' }]);
    } finally {
      await database.cleanUp();
    }
  });
});

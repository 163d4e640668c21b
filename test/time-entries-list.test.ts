import { beforeAll, expect, it } from 'vitest';
import { describeApi, type TestUser } from './support/api';
import { secondsOf, timeEntryApi, type TimeEntry } from './support/time-entry-fixtures';

interface Recorded {
  entry: TimeEntry;
  projectId: number;
  tagIds: number[];
}

// The list's filters, each at its edges, against entries made for the purpose. The expected result
// of every query is computed here from the entries as the API shows them (days are the first ten
// characters of the UTC times, durations the HH:MM:SS shown), not from the server's SQL.
describeApi('time entries: list filters', (ctx) => {
  const api = timeEntryApi(ctx);
  let user: TestUser;
  let cat: TestUser;
  let alpha: { id: number };
  let beta: { id: number };
  let gone: { id: number };
  let catProject: { id: number };
  let catTag: { id: number };
  const tags: Record<'t1' | 't2' | 't3' | 'unused', number> = { t1: 0, t2: 0, t3: 0, unused: 0 };
  const recorded: Recorded[] = [];
  let all: TimeEntry[];

  beforeAll(async () => {
    [user, cat] = await Promise.all([ctx.createUser(), ctx.createUser()]);
    alpha = await api.project(user, 'alpha');
    beta = await api.project(cat, 'beta', [user]); // a member, not the owner
    gone = await api.project(user, 'gone');
    catProject = await api.project(cat, 'cat');
    catTag = await api.tag(cat, 't1');
    for (const name of ['t1', 't2', 't3', 'unused'] as const) tags[name] = (await api.tag(user, name)).id;

    const add = async (projectId: number, start: string, end: string, tagNames: Array<keyof typeof tags> = []) => {
      const tagIds = tagNames.map((name) => tags[name]);
      recorded.push({ entry: await api.record(user, projectId, 'entry', start, end, tagIds), projectId, tagIds });
    };
    // Around the UTC day 2025-03-11: the last and first millisecond of each day.
    await add(alpha.id, '2025-03-09T10:00:00.000Z', '2025-03-10T23:59:59.999Z', ['t1']);
    await add(alpha.id, '2025-03-10T23:59:59.999Z', '2025-03-11T00:30:00.000Z', ['t2']);
    await add(beta.id, '2025-03-11T00:00:00.000Z', '2025-03-11T23:59:59.999Z', ['t1', 't2']);
    await add(beta.id, '2025-03-11T23:59:59.999Z', '2025-03-12T00:00:00.000Z');
    await add(alpha.id, '2025-03-12T00:00:00.000Z', '2025-03-12T01:00:00.000Z', ['t3']);
    // Durations around one hour and four hours (whole seconds count: 3600.999 s is 01:00:00).
    await add(alpha.id, '2025-04-01T10:00:00.000Z', '2025-04-01T10:59:59.999Z');
    await add(beta.id, '2025-04-02T10:00:00.000Z', '2025-04-02T11:00:00.000Z', ['t1']);
    await add(alpha.id, '2025-04-03T10:00:00.000Z', '2025-04-03T11:00:00.999Z');
    await add(gone.id, '2025-04-04T10:00:00.000Z', '2025-04-04T11:00:01.000Z', ['t3']);
    await add(alpha.id, '2025-04-05T10:00:00.000Z', '2025-04-05T14:00:00.000Z');
    await add(beta.id, '2025-04-06T10:00:00.000Z', '2025-04-06T14:00:01.000Z', ['t2', 't3']);
    // The running one (started now).
    recorded.push({ entry: await api.start(user, { title: 'running', project: alpha.id, tags: [tags.t2] }), projectId: alpha.id, tagIds: [tags.t2] });
    // A deleted project leaves its entries without one.
    await ctx.http.delete(`/api/projects/${gone.id}/`).set(user.auth).expect(204);
    // Another user's entries, which no filter may show.
    const catEntry = await api.record(cat, catProject.id, 'cat', '2025-03-11T12:00:00.000Z', '2025-03-11T13:00:00.000Z', [catTag.id]);
    await api.record(cat, beta.id, 'cat in beta', '2025-04-02T10:00:00.000Z', '2025-04-02T11:00:00.000Z');
    expect(catEntry.user).toBe(cat.username);

    all = await api.listAll(user, 'limit=100');
    expect(all).toHaveLength(recorded.length);
  });

  const find = (id: number) => recorded.find((r) => r.entry.id === id)!;
  const day = (time: string | null) => time?.slice(0, 10) ?? null;

  /** The query's entries (every page) must be exactly those `matches` picks, and `count` must say how many. */
  const check = async (query: string, matches: (entry: TimeEntry, r: Recorded) => boolean) => {
    const expected = all
      .filter((entry) => matches(entry, find(entry.id)))
      .map((e) => e.id)
      .sort((a, b) => a - b);
    const first = await api.list(user, `${query}&limit=100`);
    expect(first.count, query).toBe(expected.length);
    const ids = (await api.listAll(user, `${query}&limit=3`)).map((e) => e.id).sort((a, b) => a - b);
    expect(ids, query).toEqual(expected);
    return expected;
  };

  it('start_date_after / start_date_before: UTC days, both ends inclusive, to the millisecond', async () => {
    for (const d of ['2025-03-10', '2025-03-11', '2025-03-12']) {
      await check(`start_date_after=${d}`, (e) => day(e.start_time)! >= d);
      await check(`start_date_before=${d}`, (e) => day(e.start_time)! <= d);
      await check(`start_date_after=${d}&start_date_before=${d}`, (e) => day(e.start_time) === d);
    }
    // The entries of 2025-03-11 by start: 00:00:00.000 and 23:59:59.999, not 23:59:59.999 of the 10th.
    const eleventh = await check('start_date_after=2025-03-11&start_date_before=2025-03-11', (e) => day(e.start_time) === '2025-03-11');
    expect(eleventh.map((id) => find(id).entry.start_time)).toEqual(['2025-03-11T00:00:00.000Z', '2025-03-11T23:59:59.999Z']);
    // An empty range, and a range after every entry but the running one.
    await check('start_date_after=2025-03-12&start_date_before=2025-03-11', () => false);
    await check('start_date_after=2025-04-07', (e) => e.is_active);
  });

  it('end_date_after / end_date_before: UTC days, inclusive; a running entry never matches', async () => {
    for (const d of ['2025-03-10', '2025-03-11', '2025-03-12', '2025-04-06']) {
      await check(`end_date_after=${d}`, (e) => e.end_time !== null && day(e.end_time)! >= d);
      await check(`end_date_before=${d}`, (e) => e.end_time !== null && day(e.end_time)! <= d);
    }
    const eleventh = await check('end_date_after=2025-03-11&end_date_before=2025-03-11', (e) => day(e.end_time) === '2025-03-11');
    expect(eleventh.map((id) => find(id).entry.end_time)).toEqual(['2025-03-11T00:30:00.000Z', '2025-03-11T23:59:59.999Z']);
    await check('end_date_after=2000-01-01', (e) => !e.is_active);
    await check('end_date_before=2100-01-01', (e) => !e.is_active);
    await check('start_date_after=2025-03-11&end_date_before=2025-03-11', (e) => day(e.start_time)! >= '2025-03-11' && day(e.end_time) === '2025-03-11');
  });

  it('duration_min / duration_max: HH:MM:SS or seconds, inclusive, whole seconds; a running entry never matches', async () => {
    const seconds = (e: TimeEntry) => (e.duration === null ? null : secondsOf(e.duration));
    for (const [hms, secs] of [
      ['00:59:59', 3599],
      ['01:00:00', 3600],
      ['01:00:01', 3601],
      ['04:00:00', 14400],
      ['04:00:01', 14401],
    ] as const) {
      const atLeast = await check(`duration_min=${hms}`, (e) => seconds(e) !== null && seconds(e)! >= secs);
      expect(await check(`duration_min=${secs}`, (e) => seconds(e) !== null && seconds(e)! >= secs)).toEqual(atLeast);
      const atMost = await check(`duration_max=${hms}`, (e) => seconds(e) !== null && seconds(e)! <= secs);
      expect(await check(`duration_max=${secs}`, (e) => seconds(e) !== null && seconds(e)! <= secs)).toEqual(atMost);
    }
    // 01:00:00 exactly: the entries of 3600 s (two) and of 3600.999 s, not those of 3599.999 s or 3601 s.
    const hour = await check('duration_min=01:00:00&duration_max=01:00:00', (e) => seconds(e) === 3600);
    expect(hour).toHaveLength(3);
    // One-digit hours, and the bounds that take every finished entry.
    await check('duration_min=1:00:00&duration_max=4:00:00', (e) => seconds(e) !== null && seconds(e)! >= 3600 && seconds(e)! <= 14400);
    await check('duration_min=0', (e) => !e.is_active);
    await check('duration_max=999999999', (e) => !e.is_active);
    await check('duration_min=00:00:00', (e) => !e.is_active);
  });

  it('filters at the ends of their range: the first and last days of the calendar, the longest durations', async () => {
    for (const d of ['0001-01-01', '2000-01-01']) {
      await check(`start_date_after=${d}`, () => true);
      await check(`end_date_after=${d}`, (e) => !e.is_active);
      await check(`start_date_before=${d}`, () => false);
      await check(`end_date_before=${d}`, () => false);
    }
    await check('start_date_before=9999-12-31', () => true);
    await check('end_date_before=9999-12-31', (e) => !e.is_active);
    await check('start_date_after=9999-12-31', () => false);
    await check('end_date_after=9999-12-31', () => false);
    for (const value of ['999999:59:59', '596523:14:07', '596523:14:08', '999999999']) {
      await check(`duration_max=${value}`, (e) => !e.is_active);
      await check(`duration_min=${value}`, () => false);
    }
  });

  it('project: entries of that project for a member (owner or not); 403 for any other id, existing or not', async () => {
    await check(`project=${alpha.id}`, (_, r) => r.projectId === alpha.id);
    await check(`project=${beta.id}`, (_, r) => r.projectId === beta.id);
    for (const id of [catProject.id, gone.id, 2_147_483_647]) {
      const res = await ctx.http.get(`/api/time_entries/?project=${id}`).set(user.auth).expect(403);
      expect(res.body, String(id)).toEqual({ detail: expect.any(String) });
    }
    // cat sees only cat's entries in the project they share.
    const catInBeta = await api.list(cat, `project=${beta.id}`);
    expect(catInBeta.results.map((e) => e.user)).toEqual([cat.username]);
    expect(catInBeta.count).toBe(1);
  });

  it('tags: comma-separated ids, entries with any of them; ids of no own tag match nothing', async () => {
    const carries = (r: Recorded, ...names: Array<keyof typeof tags>) => names.some((name) => r.tagIds.includes(tags[name]));
    await check(`tags=${tags.t1}`, (_, r) => carries(r, 't1'));
    await check(`tags=${tags.t3}`, (_, r) => carries(r, 't3'));
    await check(`tags=${tags.t1},${tags.t2}`, (_, r) => carries(r, 't1', 't2'));
    await check(`tags=${tags.t3},${tags.t1},${tags.t3}`, (_, r) => carries(r, 't1', 't3'));
    await check(`tags=${tags.unused}`, () => false);
    await check(`tags=${catTag.id}`, () => false);
    await check(`tags=2147483647,${tags.t2}`, (_, r) => carries(r, 't2'));
  });

  it('is_active: true is the running entry, false every finished one', async () => {
    const running = await check('is_active=true', (e) => e.is_active);
    expect(running).toHaveLength(1);
    await check('is_active=false', (e) => !e.is_active);
  });

  it('combines filters (all must hold), as in SPEC’s example', async () => {
    await check(
      `start_date_after=2025-03-11&project=${alpha.id}&duration_min=00:30:00`,
      (e, r) => day(e.start_time)! >= '2025-03-11' && r.projectId === alpha.id && e.duration !== null && secondsOf(e.duration) >= 1800,
    );
    await check(
      `start_date_after=2025-04-01&start_date_before=2025-04-30&duration_min=01:00:00&duration_max=04:00:00&tags=${tags.t1},${tags.t3}`,
      (e, r) =>
        day(e.start_time)! >= '2025-04-01' &&
        day(e.start_time)! <= '2025-04-30' &&
        e.duration !== null &&
        secondsOf(e.duration) >= 3600 &&
        secondsOf(e.duration) <= 14400 &&
        (r.tagIds.includes(tags.t1) || r.tagIds.includes(tags.t3)),
    );
    await check(`is_active=true&project=${beta.id}`, () => false);
  });

  it('every malformed parameter is a 400 naming it', async () => {
    const cases: Array<[string, string]> = [];
    for (const name of ['start_date_after', 'start_date_before', 'end_date_after', 'end_date_before']) {
      for (const value of ['2025-02-30', '2025-02-29', '0000-01-01', '2025-1-1', '2025-13-01', '2025-00-10', '2025-04-31', '20250101', '2025-01-01T00:00:00Z', '', 'today', '%202025-01-01', '2025-01-01x', '25-01-01']) {
        cases.push([`${name}=${value}`, name]);
      }
    }
    for (const name of ['duration_min', 'duration_max']) {
      for (const value of ['1:2:3', '00:60:00', '00:00:60', '-5', '1.5', 'abc', '', '01:00', '01:00:00:00', '1e3', '0x10', '%2B5', '1234567890', '1234567:00:00']) {
        cases.push([`${name}=${value}`, name]);
      }
    }
    for (const value of ['abc', '0', '-1', '1.5', '', '01', '2147483648', '1e3']) cases.push([`project=${value}`, 'project']);
    for (const value of ['a', '1,,2', ',1', '1,', '', '0', '1;2', 'x,1', '-1', '1.5', '9999999999', '1,2147483648']) cases.push([`tags=${value}`, 'tags']);
    for (const value of ['yes', '1', 'True', '', 'null']) cases.push([`is_active=${value}`, 'is_active']);
    for (const value of ['x', 'start', '--title', '%2Btitle', 'Title', '', 'id', '-id', 'title,-start_time']) cases.push([`ordering=${value}`, 'ordering']);
    for (const value of ['0', '101', 'abc', '-1', '1.5', '', '1000000', '%205', '5%20', '1e1', '0x10', '%2B5']) cases.push([`limit=${value}`, 'limit']);
    cases.push(['is_active=true&is_active=false', 'is_active'], ['ordering=title&ordering=-title', 'ordering'], ['project[x]=1', 'project']);
    for (const name of ['foo', 'page', 'user', 'search', 'offset', 'Project']) cases.push([`${name}=1`, name]);

    for (const [query, name] of cases) {
      const res = await ctx.http.get(`/api/time_entries/?${query}`).set(user.auth);
      expect(res.status, query).toBe(400);
      expect(Object.keys(res.body), query).toEqual([name]);
      expect(res.body[name].length, query).toBeGreaterThan(0);
      for (const message of res.body[name]) expect(message, query).toEqual(expect.any(String));
    }
    // The edges that are valid.
    for (const query of ['start_date_after=2024-02-29', 'end_date_before=2025-12-31', 'duration_min=000001:00:00', 'duration_max=999999999', 'limit=1', 'limit=100', 'tags=1,2,3', 'is_active=false', 'ordering=-project_name']) {
      await api.list(user, query);
    }
  });
});

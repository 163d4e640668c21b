import { beforeAll, expect, it } from 'vitest';
import { describeApi, type TestUser } from './support/api';
import { encodeCursor, expectedOrder, ORDERINGS, timeEntryApi, type Page, type TimeEntry } from './support/time-entry-fixtures';

const ids = (page: Page) => page.results.map((e) => e.id);

// The list's orderings and its cursor pages. Entries are made with ties in every sort key (same
// start, same end, same whole-second duration, same title, same project, and all but one finished),
// so that only the tie-break by id gives one order; titles and project names are lower-case ASCII,
// which every collation orders alike.
describeApi('time entries: ordering and cursor pages', (ctx) => {
  const api = timeEntryApi(ctx);
  let user: TestUser;
  let entries: TimeEntry[];

  beforeAll(async () => {
    user = await ctx.createUser();
    const alpha = await api.project(user, 'alpha');
    const bravo = await api.project(user, 'bravo');
    const charlie = await api.project(user, 'charlie');
    const gone = await api.project(user, 'gone');
    const made = [
      ['delta', bravo.id, '2025-05-01T09:00:00.000Z', '2025-05-01T10:00:00.000Z'],
      ['alpha', alpha.id, '2025-05-01T09:00:00.000Z', '2025-05-01T09:30:00.250Z'],
      ['delta', charlie.id, '2025-05-02T08:00:00.000Z', '2025-05-02T09:00:00.000Z'],
      ['bravo', alpha.id, '2025-05-03T10:00:00.000Z', '2025-05-03T10:00:10.700Z'],
      ['bravo', bravo.id, '2025-05-03T11:00:00.000Z', '2025-05-03T11:00:10.200Z'],
      ['charlie', bravo.id, '2025-05-02T08:00:00.000Z', '2025-05-02T09:00:00.000Z'],
      ['echo', gone.id, '2025-04-30T23:59:59.999Z', '2025-05-01T00:00:00.000Z'],
      ['foxtrot', alpha.id, '2025-04-01T00:00:00.000Z', '2025-04-03T01:00:00.000Z'],
      ['alpha', charlie.id, '2025-05-04T12:00:00.000Z', '2025-05-04T12:00:00.001Z'],
      ['golf', gone.id, '2025-05-05T00:00:00.000Z', '2025-05-05T01:00:00.000Z'],
      ['hotel', charlie.id, '2025-05-06T00:00:00.000Z', '2025-05-06T00:00:00.500Z'],
      ['alpha', alpha.id, '2025-05-01T09:00:00.000Z', '2025-05-01T09:30:00.250Z'],
      ['juliet', bravo.id, '2025-05-07T00:00:00.000Z', '2025-05-08T00:00:00.000Z'],
    ] as const;
    for (const [title, project, start, end] of made) await api.record(user, project, title, start, end);
    await api.start(user, { title: 'india', project: bravo.id });
    // Entries of a deleted project have no project: they sort as the empty name.
    await ctx.http.delete(`/api/projects/${gone.id}/`).set(user.auth).expect(204);
    entries = await api.listAll(user, 'limit=100');
    expect(entries).toHaveLength(made.length + 1);
    expect(entries.filter((e) => e.project === null)).toHaveLength(2);
  });

  it('sorts by every ordering, ties broken by id in the same direction; -start_time by default', async () => {
    for (const ordering of ORDERINGS) {
      const page = await api.list(user, `ordering=${ordering}&limit=100`);
      expect(ids(page), ordering).toEqual(expectedOrder(entries, ordering));
      expect(page).toMatchObject({ count: entries.length, next: null, previous: null });
    }
    expect(ids(await api.list(user, 'limit=100'))).toEqual(expectedOrder(entries, '-start_time'));
    // The running entry is last by end_time and duration ascending, first descending.
    const running = entries.find((e) => e.is_active)!.id;
    for (const ordering of ['end_time', 'duration']) {
      expect(ids(await api.list(user, `ordering=${ordering}&limit=100`)).at(-1), ordering).toBe(running);
      expect(ids(await api.list(user, `ordering=-${ordering}&limit=100`))[0], `-${ordering}`).toBe(running);
    }
    expect(ids(await api.list(user, 'ordering=-is_active&limit=100'))[0]).toBe(running);
  });

  it('walks every ordering forward with next and back with previous: no gap, no duplicate, the same pages', async () => {
    for (const ordering of ORDERINGS) {
      for (const limit of [1, 4]) {
        const label = `ordering=${ordering}&limit=${limit}`;
        const forward = await api.walkForward(user, label);
        expect(forward.flatMap(ids), label).toEqual(expectedOrder(entries, ordering));
        expect(forward).toHaveLength(Math.ceil(entries.length / limit));
        for (const [i, page] of forward.entries()) {
          expect(page.count, label).toBe(entries.length);
          expect(page.results.length, label).toBe(i < forward.length - 1 ? limit : entries.length - limit * i);
          expect(page.previous === null, `${label} page ${i}`).toBe(i === 0);
          expect(page.next === null, `${label} page ${i}`).toBe(i === forward.length - 1);
        }

        const back = [forward.at(-1)!];
        for (let previous = back[0].previous; previous; previous = back.at(-1)!.previous) {
          back.push(await api.list(user, new URL(previous)));
          expect(back.length, label).toBeLessThanOrEqual(forward.length);
        }
        back.reverse();
        expect(back.map(ids), label).toEqual(forward.map(ids));
        for (const page of back) expect(page.count, label).toBe(entries.length);
        // A page reached walking back leads forward to the same page as before.
        for (const [i, page] of (limit === 1 ? [] : back.slice(0, -1)).entries()) {
          expect(page.next, `${label} back page ${i}`).not.toBeNull();
          expect(ids(await api.list(user, new URL(page.next!))), label).toEqual(ids(forward[i + 1]));
        }
      }
    }
  });

  it('next and previous are absolute URLs that keep the filters, the ordering and the limit', async () => {
    const res = await ctx.http
      .get('/api/time_entries/?ordering=title&limit=2&is_active=false&start_date_after=2025-05-01')
      .set(user.auth)
      .set('Host', 'api.example.com:8443')
      .expect(200);
    const next = new URL(res.body.next);
    expect(next.origin).toBe('http://api.example.com:8443');
    expect(next.pathname).toBe('/api/time_entries/');
    expect(Object.fromEntries(next.searchParams)).toEqual({
      ordering: 'title',
      limit: '2',
      is_active: 'false',
      start_date_after: '2025-05-01',
      cursor: expect.any(String),
    });
    const second: Page = (await ctx.http.get(`${next.pathname}${next.search}`).set(user.auth).set('Host', 'api.example.com:8443').expect(200)).body;
    const previous = new URL(second.previous!);
    expect(previous.origin).toBe('http://api.example.com:8443');
    expect(previous.searchParams.get('limit')).toBe('2');
    expect(previous.searchParams.get('is_active')).toBe('false');

    // Walking a filtered list gives the filtered entries in order.
    const filtered = entries.filter((e) => !e.is_active && e.start_time.slice(0, 10) >= '2025-05-01');
    const walked = await api.walkForward(user, 'ordering=title&limit=2&is_active=false&start_date_after=2025-05-01');
    expect(walked.flatMap(ids)).toEqual(expectedOrder(filtered, 'title'));
    for (const page of walked) expect(page.count).toBe(filtered.length);
  });

  it('a Host header that is no host is a 400 naming host, never a 500 nor a next URL on another host or path', async () => {
    const list = () => ctx.http.get('/api/time_entries/?limit=2').set(user.auth);
    // Each made the URL fail to parse (a 500), or moved it: `x/y?z=` → http://x/y?z=…, `u@h` → host h.
    for (const host of ['a b', 'h:99999', '[::1', '%zz', 'x/y?z=', 'evil@api.example.com', 'a\\b', '']) {
      const res = await list().set('Host', host);
      expect([res.status, res.body], host).toEqual([400, { host: [expect.any(String)] }]);
    }
    // Hosts as clients send them: a name with a port, an IPv4 and an IPv6 address, a final dot.
    for (const [host, origin] of [
      ['API.Example.com:8443', 'http://api.example.com:8443'],
      ['127.0.0.1:8000', 'http://127.0.0.1:8000'],
      ['[::1]:8000', 'http://[::1]:8000'],
      ['localhost', 'http://localhost'],
      ['example.com.', 'http://example.com.'],
    ]) {
      const res = await list().set('Host', host).expect(200);
      expect(new URL(res.body.next).origin, host).toBe(origin);
    }
  });

  it('limit: 20 by default, at most 100', async () => {
    const many = await ctx.createUser();
    const project = await api.project(many, 'bulk');
    const made: TimeEntry[] = [];
    for (let batch = 0; batch < 7; batch++) {
      made.push(
        ...(await Promise.all(
          Array.from({ length: 15 }, (_, i) => {
            const n = batch * 15 + i;
            const start = new Date(Date.UTC(2025, 0, 1) + n * 3_600_000);
            return api.record(many, project.id, `bulk ${String(n).padStart(3, '0')}`, start.toISOString(), new Date(start.getTime() + 60_000).toISOString());
          }),
        )),
      );
    }
    expect(made).toHaveLength(105);
    const byDefault = await api.walkForward(many, '');
    expect(byDefault.map((page) => page.results.length)).toEqual([20, 20, 20, 20, 20, 5]);
    expect(byDefault.flatMap(ids)).toEqual(expectedOrder(made, '-start_time'));
    const most = await api.walkForward(many, 'limit=100');
    expect(most.map((page) => page.results.length)).toEqual([100, 5]);
    expect(most.every((page) => page.count === 105)).toBe(true);
    const tooMany = await ctx.http.get('/api/time_entries/?limit=101').set(many.auth).expect(400);
    expect(Object.keys(tooMany.body)).toEqual(['limit']);
  });

  it('rows written between page loads: none already listed comes again, none that was ahead is skipped', async () => {
    const writer = await ctx.createUser();
    const project = await api.project(writer, 'p');
    const record = (title: string, day: number) =>
      api.record(writer, project.id, title, `2025-06-${String(day).padStart(2, '0')}T10:00:00.000Z`, `2025-06-${String(day).padStart(2, '0')}T11:00:00.000Z`);
    const original: TimeEntry[] = [];
    for (const [i, title] of ['c', 'e', 'g', 'i', 'k', 'm', 'o', 'q', 's', 'u'].entries()) original.push(await record(title, i + 1));

    const first = await api.list(writer, 'ordering=title&limit=3');
    expect(first.results.map((e) => e.title)).toEqual(['c', 'e', 'g']);
    // Behind the cursor: never shown. Ahead, or on the cursor's title with a larger id: shown in place.
    const behind = await record('a', 20);
    const sameTitle = await record('g', 21);
    const ahead = await record('h', 22);
    const last = await record('z', 23);
    // The row the cursor points at goes away, and one not listed yet too.
    const [cursorRow, removed] = [original[2], original[3]];
    await ctx.http.delete(`/api/time_entries/${cursorRow.id}/`).set(writer.auth).expect(204);
    await ctx.http.delete(`/api/time_entries/${removed.id}/`).set(writer.auth).expect(204);

    const second = await api.list(writer, new URL(first.next!));
    expect(second.results.map((e) => e.id)).toEqual([sameTitle.id, ahead.id, original[4].id]);
    expect(second.count).toBe(original.length + 4 - 2);
    const late = await record('n', 24); // ahead of the second page's end (k)
    const early = await record('f', 25); // behind it
    const rest = await api.walkForward(writer, `${new URL(second.next!).search.slice(1)}`);

    const seen = [first, second, ...rest].flatMap(ids);
    expect(new Set(seen).size).toBe(seen.length);
    const expected = [...original.filter((e) => e !== removed), sameTitle, ahead, last, late];
    expect(seen.filter((id) => id !== cursorRow.id).sort((a, b) => a - b)).toEqual(expected.filter((e) => e !== cursorRow).map((e) => e.id).sort((a, b) => a - b));
    expect(seen).not.toContain(behind.id);
    expect(seen).not.toContain(early.id);
    expect(seen).not.toContain(removed.id);
    // In order of (title, id) throughout.
    const titles = [first, second, ...rest].flatMap((page) => page.results.map((e) => e.title));
    expect(titles).toEqual(['c', 'e', 'g', 'g', 'h', 'k', 'm', 'n', 'o', 'q', 's', 'u', 'z']);
  });

  it('new timers started while paging the default order (newest first) do not push listed rows onto later pages', async () => {
    const writer = await ctx.createUser();
    const project = await api.project(writer, 'p');
    const original: TimeEntry[] = [];
    for (let day = 1; day <= 9; day++) {
      original.push(await api.record(writer, project.id, `day ${day}`, `2025-07-0${day}T10:00:00.000Z`, `2025-07-0${day}T11:00:00.000Z`));
    }
    const pages = [await api.list(writer, 'limit=2')];
    const started: number[] = [];
    while (pages.at(-1)!.next) {
      started.push((await api.start(writer, { title: 'now', project: project.id })).id);
      pages.push(await api.list(writer, new URL(pages.at(-1)!.next!)));
    }
    const seen = pages.flatMap(ids);
    expect(seen).toEqual(expectedOrder(original, '-start_time'));
    expect(pages.at(-1)!.count).toBe(original.length + started.length);
  });

  it('a tampered cursor is a 400 naming cursor, never a 500', async () => {
    const title = await api.list(user, 'ordering=title&limit=2');
    const real = new URL(title.next!).searchParams.get('cursor')!;
    const defaultNext = new URL((await api.list(user, 'limit=2')).next!).searchParams.get('cursor')!;
    const cases: Array<[string, string]> = [
      ['ordering=title', 'garbage'],
      ['ordering=title', '!!!!'],
      ['ordering=title', '%25%25%25'],
      ['ordering=title', real.slice(0, 10)],
      ['ordering=title', `${real}x`],
      ['ordering=title', real.replace(/^./, (c) => (c === 'e' ? 'f' : 'e'))],
      ['ordering=title', 'x'.repeat(2001)],
      // Valid base64 of other JSON.
      ...[{}, [], null, 1, 'x', true, { o: 'title' }, { o: 'title', k: 'a' }, { o: 'title', i: 1 }, { k: 'a', i: 1 }].map(
        (value) => ['ordering=title', encodeCursor(value)] as [string, string],
      ),
      ['ordering=title', encodeCursor({ o: 'title', k: 'a', i: 1, extra: 1 })],
      ['ordering=title', encodeCursor({ o: 'title', k: 'a', i: 0 })],
      ['ordering=title', encodeCursor({ o: 'title', k: 'a', i: -1 })],
      ['ordering=title', encodeCursor({ o: 'title', k: 'a', i: 1.5 })],
      ['ordering=title', encodeCursor({ o: 'title', k: 'a', i: '1' })],
      ['ordering=title', encodeCursor({ o: 'title', k: null, i: 1 })],
      ['ordering=title', encodeCursor({ o: 'title', k: {}, i: 1 })],
      ['ordering=title', encodeCursor({ o: 'title', k: 'a', i: 1, b: false })],
      ['ordering=title', encodeCursor({ o: 'title', k: 'x'.repeat(501), i: 1 })],
      // A cursor of another ordering.
      ['ordering=-title', real],
      ['', real],
      ['ordering=start_time', real],
      ['ordering=title', defaultNext],
      ['ordering=start_time', defaultNext],
    ];
    for (const [query, cursor] of cases) {
      const path = `/api/time_entries/?${query}${query ? '&' : ''}cursor=${cursor.startsWith('%') ? cursor : encodeURIComponent(cursor)}`;
      const res = await ctx.http.get(path).set(user.auth);
      expect(res.status, path.slice(0, 200)).toBe(400);
      expect(Object.keys(res.body), path.slice(0, 200)).toEqual(['cursor']);
      expect(res.body.cursor, path.slice(0, 200)).toEqual([expect.any(String)]);
    }
    // Cursors of the right shape whose key no cursor of the server can carry for its ordering: times
    // are ms within Date's range (a running entry's end is 2^53-1), durations seconds up to 2^31-1,
    // titles and names text, is_active a boolean; ids are at most 2^31-1.
    const tampered: Record<string, unknown[]> = {
      // Past 9999 a Date still holds it, Postgres not as it is bound (a 500 there once).
      start_time: [1e308, -1e308, 2 ** 60, 'x', true, 8.64e15, Date.UTC(10_000, 0, 1)],
      end_time: [1e308, -1e308, 2 ** 60, 'x', true, Date.UTC(10_000, 0, 1)],
      duration: [1e308, -1e308, 3e9, 'x', true],
      // A NUL, which no title can hold and Postgres cannot compare with.
      title: [true, 1e308, 'a\u0000'],
      project_name: [true, 1e308, '\u0000'],
      is_active: [1e308, 'x'],
    };
    const valid: Record<string, unknown> = { start_time: 1, end_time: 1, duration: 1, title: 'x', project_name: 'x', is_active: true };
    const failures: string[] = [];
    for (const o of ORDERINGS) {
      const field = o.replace(/^-/, '');
      for (const cursor of [...tampered[field].map((k) => ({ o, k, i: 1 })), { o, k: valid[field], i: 2 ** 31 }, { o, k: valid[field], i: 1e20 }]) {
        const res = await ctx.http.get(`/api/time_entries/?ordering=${o}&cursor=${encodeCursor(cursor)}`).set(user.auth);
        if (res.status !== 400 || Object.keys(res.body).join() !== 'cursor') {
          failures.push(`${JSON.stringify(cursor)} → ${res.status} ${JSON.stringify(res.body).slice(0, 60)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // The real one still works where it belongs.
    expect(ids(await api.list(user, `ordering=title&limit=2&cursor=${real}`))).toEqual(expectedOrder(entries, 'title').slice(2, 4));
  });
  it('pages by titles as long as a title may be, whatever their characters (the cursor carries the title)', async () => {
    const writer = await ctx.createUser();
    const project = await api.project(writer, 'long titles');
    // 200 characters each, the most a title may have; control characters take six bytes of JSON each.
    const titles = [`a${'\u0001'.repeat(199)}`, `b${'"'.repeat(199)}`, '漢'.repeat(200), `c${'\u{1f600}'.repeat(99)}`];
    for (const title of titles) await api.record(writer, project.id, title, '2025-06-01T09:00:00.000Z', '2025-06-01T10:00:00.000Z');
    for (const ordering of ['title', '-title']) {
      const listed = (await api.walkForward(writer, `ordering=${ordering}&limit=1`)).flatMap((page) => page.results.map((e) => e.title));
      expect(listed.sort()).toEqual([...titles].sort());
    }
  });
});

// Behind a load balancer (TRUST_PROXY): the scheme is the one X-Forwarded-Proto names.
describeApi(
  'time entries: page URLs behind a proxy',
  (ctx) => {
    const api = timeEntryApi(ctx);

    it('writes next on the scheme the proxy names, and answers one that is not http or https with a 400, never a 500', async () => {
      const user = await ctx.createUser();
      const project = await api.project(user, 'proxied');
      for (const day of ['01', '02']) await api.record(user, project.id, 'entry', `2025-01-${day}T00:00:00.000Z`, `2025-01-${day}T01:00:00.000Z`);
      const list = (proto: string) => ctx.http.get('/api/time_entries/?limit=1').set(user.auth).set('Host', 'api.example.com').set('X-Forwarded-Proto', proto);
      for (const [proto, origin] of [['https', 'https://api.example.com'], ['HTTPS', 'https://api.example.com'], ['http', 'http://api.example.com']]) {
        expect(new URL((await list(proto).expect(200)).body.next).origin, proto).toBe(origin);
      }
      for (const proto of ['javascript', 'ftp', 'https:']) {
        const res = await list(proto);
        expect([res.status, res.body], proto).toEqual([400, { 'x-forwarded-proto': [expect.any(String)] }]);
      }
    });
  },
  { trustProxy: 1 },
);

import { randomUUID } from 'node:crypto';
import { sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { beforeAll, expect, it } from 'vitest';
import { TIME_ENTRY_ORDERINGS, type TimeEntryOrdering } from '../contract/time-entries';
import { pageQuery } from '../server/time-entries/time-entry-list';
import { describeApi, type TestUser } from './support/api';

const ENTRIES = 2_000;
const HOUR = 3600_000;

/** Which index each ordering's page must be read from (project_name sorts on a joined table). */
const INDEX_OF: Record<Exclude<(typeof TIME_ENTRY_ORDERINGS)[number], 'project_name'>, string> = {
  start_time: 'time_entries_user_start_idx',
  end_time: 'time_entries_user_end_idx',
  duration: 'time_entries_user_duration_idx',
  title: 'time_entries_user_title_idx',
  is_active: 'time_entries_user_active_idx',
};

/**
 * The plans the databases choose for list pages, read with EXPLAIN: a page is a range scan of the
 * ordering's composite index, from page 1 to a deep page, so its cost does not grow with depth.
 */
describeApi('list query plans', (ctx) => {
  let heavy: TestUser;

  beforeAll(async () => {
    heavy = await ctx.createUser();
    const light = await ctx.createUser();
    const { store } = ctx.database;
    const { t } = store;
    const base = Date.UTC(2024, 0, 1);
    const entry = (userId: number, i: number) => ({
      userId,
      projectId: null,
      title: `entry ${i % 97}`,
      description: '',
      startTime: new Date(base + i * HOUR),
      endTime: new Date(base + i * HOUR + (i % 50) * 60_000 + 60_000),
      idleSeconds: 0,
      createdAt: new Date(),
    });
    await store.insertAll(t.timeEntries, [
      ...Array.from({ length: ENTRIES }, (_, i) => entry(heavy.id, i)),
      ...Array.from({ length: 200 }, (_, i) => entry(light.id, i)),
    ]);
    await store.insertAll(
      t.notifications,
      Array.from({ length: ENTRIES }, (_, i) => ({
        id: randomUUID(),
        userId: i % 10 === 0 ? light.id : heavy.id,
        type: 'INFO',
        message: `n ${i}`,
        createdAt: new Date(base + i * 1000),
        deliveredAt: null,
        readAt: null,
      })),
    );
    // Fresh statistics, as a database in use has them.
    if (store.dialect === 'postgres') await store.db.execute(sql`analyze`);
    else await (store.db as unknown as { run(query: SQL): Promise<unknown> }).run(sql`analyze`);
  });

  /** The plan of a query, as one text (Postgres: EXPLAIN; SQLite: EXPLAIN QUERY PLAN). */
  async function planOf(query: SQLWrapper): Promise<string> {
    const { db, dialect } = ctx.database.store;
    if (dialect === 'postgres') {
      const result = await db.execute(sql`explain ${query}`);
      return result.rows.map((row) => String(row['QUERY PLAN'])).join('\n');
    }
    // drizzle puts an embedded query in parentheses, which SQLite's EXPLAIN does not take: ask the driver.
    const { sql: text, params } = (query as unknown as { toSQL(): { sql: string; params: unknown[] } }).toSQL();
    const sqlite = (db as unknown as { $client: { prepare(text: string): { all(...params: unknown[]): Array<{ detail: string }> } } }).$client;
    return sqlite
      .prepare(`explain query plan ${text}`)
      .all(...params)
      .map((row) => row.detail)
      .join('\n');
  }

  /** The cursor of a page deep in the list, walked there through the API. */
  async function deepCursor(ordering: TimeEntryOrdering): Promise<string> {
    let url = `/api/time_entries/?ordering=${ordering}&limit=100`;
    for (let page = 0; page < 15; page++) {
      const res = await ctx.http.get(url).set(heavy.auth).expect(200);
      const next = new URL(res.body.next);
      url = `${next.pathname}${next.search}`;
    }
    return new URL(url, 'http://x').searchParams.get('cursor')!;
  }

  const expectIndexRange = (plan: string, index: string, keyColumns: string) => {
    expect(plan, plan).toContain(index);
    expect(plan, plan).not.toMatch(/Seq Scan on time_entries|SCAN time_entries\b(?! USING)/);
    if (ctx.database.dialect === 'sqlite') {
      // The sort key is part of the index search (a seek to the cursor), not only user_id: SQLite
      // shows the row value, or its first column when it seeks on that and checks id on the way.
      expect(plan, plan).toMatch(new RegExp(`USING (COVERING )?INDEX ${index} \\(user_id=\\? AND (\\(${keyColumns},id\\)|${keyColumns})[<>]`));
    } else {
      expect(plan, plan).toMatch(new RegExp(`Index Cond: .*ROW\\(${keyColumns.replace(/_/g, '_')}, id\\)`));
    }
  };

  it('reads the default page (newest first) from the user’s start-time index', async () => {
    const plan = await planOf(pageQuery(ctx.database.store, heavy.id, { ordering: '-start_time', limit: 20 }).rows);
    expect(plan, plan).toContain(INDEX_OF.start_time);
    expect(plan, plan).not.toMatch(/Seq Scan on time_entries|SCAN time_entries\b(?! USING)/);
  });

  it('reads a deep page of every ordering as a range of that ordering’s index, not a scan from the start', async () => {
    const keyColumns: Record<keyof typeof INDEX_OF, string> = {
      start_time: 'start_time',
      end_time: 'end_key',
      duration: 'duration_key',
      title: 'title',
      is_active: 'is_active',
    };
    for (const field of Object.keys(INDEX_OF) as Array<keyof typeof INDEX_OF>) {
      for (const ordering of [field, `-${field}`] as TimeEntryOrdering[]) {
        const cursor = await deepCursor(ordering);
        const plan = await planOf(pageQuery(ctx.database.store, heavy.id, { ordering, cursor, limit: 100 }).rows);
        expectIndexRange(plan, INDEX_OF[field], keyColumns[field]);
      }
    }
  });

  it('serves each filter from an index, not a scan of the table', async () => {
    const filters = [
      { start_date_after: '2024-02-01', start_date_before: '2024-02-03' },
      { end_date_after: '2024-02-01', end_date_before: '2024-02-03' },
      { duration_min: 2_900, duration_max: 3_000 },
      { is_active: true },
      { project: 1 },
    ];
    for (const filter of filters) {
      const plan = await planOf(pageQuery(ctx.database.store, heavy.id, { ordering: '-start_time', limit: 20, ...filter }).rows);
      expect(plan, JSON.stringify(filter) + '\n' + plan).toMatch(/time_entries_(user_\w+_idx|one_active_key)/);
      expect(plan, plan).not.toMatch(/Seq Scan on time_entries|SCAN time_entries\b(?! USING)/);
    }
  });

  it('reads a deep notifications page as a range of (created_at, id) in the user’s index', async () => {
    let url = '/api/notifications/?limit=100';
    for (let page = 0; page < 10; page++) {
      const res = await ctx.http.get(url).set(heavy.auth).expect(200);
      url = /<([^>]+)>; rel="next"/.exec(res.headers.link)![1];
    }
    const cursor = new URL(url, 'http://x').searchParams.get('cursor')!;
    const plan = await planOf(ctx.services.notifications.pageQuery(heavy.id, { limit: 100, cursor }));
    expect(plan, plan).toContain('notifications_user_created_idx');
    if (ctx.database.dialect === 'sqlite') expect(plan, plan).toContain('(created_at,id)<(?,?)');
    else expect(plan, plan).toMatch(/Index Cond: .*ROW\(created_at, id\) < ROW/);
  });

  it('counts an unfiltered list from the kept count, which follows inserts and deletes', async () => {
    const { db, t } = ctx.database.store;
    const rowsOf = async () => (await db.select({ id: t.timeEntries.id }).from(t.timeEntries).where(sql`${t.timeEntries.userId} = ${heavy.id}`)).length;
    const countOf = async () => (await ctx.http.get('/api/time_entries/').set(heavy.auth).expect(200)).body.count;
    expect(await countOf()).toBe(await rowsOf());
    const project = (await ctx.http.post('/api/projects/').set(heavy.auth).send({ title: 'Counted' }).expect(201)).body.id;
    const created = await Promise.all(
      Array.from({ length: 5 }, () => ctx.http.post('/api/time_entries/').set(heavy.auth).send({ title: 'new', project })),
    );
    expect(created.map((res) => res.status)).toEqual([201, 201, 201, 201, 201]);
    // Which of the concurrent starts runs last is up to the race: delete one that was stopped.
    const running = (await ctx.http.get('/api/time_entries/current_active/').set(heavy.auth).expect(200)).body.id;
    const stopped = created.find((res) => res.body.id !== running)!;
    await ctx.http.delete(`/api/time_entries/${stopped.body.id}/`).set(heavy.auth).expect(204);
    expect(await countOf()).toBe(await rowsOf());
    // A filtered count is counted, and agrees with the rows it selects.
    const active = (await ctx.http.get('/api/time_entries/?is_active=true').set(heavy.auth).expect(200)).body;
    expect(active.count).toBe(1);
  });
});

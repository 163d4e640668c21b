// The time-entries list benchmark: `npm run bench:time-entries` (issue 13).
//
// On SQLite (a temp file) and on Postgres (a throw-away database), seeds one heavy user with
// 1,000,000 time entries and 100 light users with 100 each (bench/support/time-entry-seed.ts), serves
// the real app (createApp/createServices, rate limits off) on loopback in this process, and times
// sequential GET /api/time_entries/ requests: a light user's default page, the heavy user's page 1
// and the page at row 900,000 (a cursor built from that row's key), each filter's page 1, other
// orderings' page 1 and deep page. Every answer carries the exact count, as the API always does.
// The baseline, in the same run: OFFSET pagination of the same query at the same depths, with the
// count(*) an OFFSET API runs, straight on the database with drizzle — next to the keyset page's
// own queries (pageQuery + the kept count), timed the same way. Writes
// bench/results/time-entries.{json,md}; the plans of the measured queries go into the JSON.
//
// Environment (all optional):
//   BENCH_HEAVY_ENTRIES  the heavy user's entries, default 1000000
//   BENCH_DEEP_ROW       the row the deep pages start after, default 900000 (at most the entries − 20)
//   BENCH_SAMPLES        timed requests per figure, default 40 (a slow figure stops after 12 s of samples, at least 5)
//   BENCH_WARM_UP        untimed requests before each figure, default 3
//   BENCH_SEED_WRITER    "insertAll" to seed Postgres through Store.insertAll too (slower; see the seed module)
//   BENCH_POSTGRES_URL   server to create the throw-away database on, default postgres://postgres@127.0.0.1:5432/test
//   BENCH_SKIP_POSTGRES  "1" to leave out Postgres
//   BENCH_MAX_MINUTES    the run is stopped after this, default 15
//   BENCH_RESULTS_NAME   file name of the results under bench/results/, default "time-entries"
import { mkdtempSync, rmSync } from 'node:fs';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { asc, count as countAll, desc, eq, sql, type SQLWrapper } from 'drizzle-orm';
import { pino } from 'pino';
import { timeEntriesContract, type TimeEntryListQuery, type TimeEntryOrdering } from '../contract/time-entries';
import { openDatabase, type Store } from '../db/open-database';
import { createApp, createServices } from '../server/app';
import { encodeCursor } from '../server/pagination/keyset-cursor';
import { filterCondition, pageQuery, parseOrdering } from '../server/time-entries/time-entry-list';
import { attempt, Cleanups, codeUnderTest, type CodeUnderTest, count, envInt, fmt, getJson, type LatencySummary, log, machine, type Machine, now, resultsName, runBenchmark, sampleInterleaved, table, withDeadline, writeResults } from './support/measure';
import { createThrowawayDatabase } from './support/throwaway-database';
import { seedTimeEntries, type Seeded } from './support/time-entry-seed';

// ---------------------------------------------------------------------------------------------
// Configuration

const HEAVY_ENTRIES = envInt('BENCH_HEAVY_ENTRIES', 1_000_000);
const LIGHT_USERS = 100;
const LIGHT_ENTRIES = 100;
const DEEP_ROW = Math.min(envInt('BENCH_DEEP_ROW', 900_000), HEAVY_ENTRIES - 20);
const SAMPLES = envInt('BENCH_SAMPLES', 40);
const WARM_UP = Number.parseInt(process.env.BENCH_WARM_UP ?? '3', 10) || 0;
/** A figure whose requests are slow stops after this much time (with at least MIN_SAMPLES). */
const BUDGET_MS = 12_000;
const MIN_SAMPLES = 5;
const SEED_CHUNK = 10_000;
const SEED_WRITER_PG = process.env.BENCH_SEED_WRITER === 'insertAll' ? 'insertAll' : 'bulk';
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SKIP_POSTGRES = process.env.BENCH_SKIP_POSTGRES === '1';
const MAX_MS = Number(process.env.BENCH_MAX_MINUTES ?? '15') * 60_000;
const RESULTS_NAME = resultsName('time-entries');
const PAGE = 20;

const cleanups = new Cleanups();
const listQuery = timeEntriesContract.list.query;

// ---------------------------------------------------------------------------------------------
// What is measured

/** The orderings measured besides the default, each at page 1 and deep. */
const OTHER_ORDERINGS = ['end_time', '-duration', 'title'] as const satisfies readonly TimeEntryOrdering[];
const DEEP_ORDERINGS: TimeEntryOrdering[] = ['-start_time', ...OTHER_ORDERINGS];
const deepScenarioId = (ordering: TimeEntryOrdering) => (ordering === '-start_time' ? 'heavy-deep' : `order${ordering}-deep`);

interface Scenario {
  id: string;
  label: string;
  group: 'pages' | 'filters' | 'orderings';
  user: 'light' | 'heavy';
  params: Record<string, string>;
}

interface HttpFigure {
  id: string;
  label: string;
  group: Scenario['group'];
  path: string;
  latency: LatencySummary;
  /** From the first timed answer: the count it reported, the rows on the page, the first row's id. */
  count: number;
  results: number;
  firstId: number | null;
}

interface DbFigure {
  id: string;
  label: string;
  latency: LatencySummary;
}

interface Plan {
  id: string;
  query: 'page' | 'count';
  plan: string;
}

interface DialectRun {
  dialect: string;
  /** sqlite_version() or Postgres's server_version. */
  version: string;
  database: string;
  seed: {
    writer: string;
    entries: number;
    tagLinks: number;
    setupMs: number;
    entriesMs: number;
    vacuumMs: number;
    totalMs: number;
    entriesPerSecond: number;
  };
  /** The kept count (time_entry_counts) against count(*), for the heavy user and all light users. */
  countCheck: { heavyKept: number; heavyCounted: number; lightMismatches: number; ok: boolean };
  /** Per ordering: reading row DEEP_ROW and the 20 after it once (the OFFSET query the deep cursor is built from). */
  deepKeyReadMs: Record<string, number>;
  /** Per ordering: the keyset deep page (on the database, and its first row over HTTP) holds the same rows as OFFSET DEEP_ROW. */
  deepPageCheck: Record<string, { offsetIds: number[]; keysetIds: number[]; httpFirstId: number | null; ok: boolean }>;
  http: HttpFigure[];
  db: DbFigure[];
  plans: Plan[];
  loadAverageAfter: number[];
}

// ---------------------------------------------------------------------------------------------
// One dialect

type Row = { id: number; sortKey: unknown };

/**
 * Rows `n` to `n + length − 1` (1-based) of the heavy user's list in `ordering`, with their sort
 * keys: one OFFSET query. Row `n` gives the deep cursor; the rows after it are the page that the
 * cursor must lead to.
 */
async function rowsFrom(store: Store, userId: number, ordering: TimeEntryOrdering, n: number, length: number): Promise<Row[]> {
  const { db, t } = store;
  const e = t.timeEntries;
  const { field, direction } = parseOrdering(ordering);
  const keys = { start_time: e.startTime, end_time: e.endKey, duration: e.durationKey, title: e.title } as const;
  if (!(field in keys)) throw new Error(`no deep cursor for ${ordering}`);
  const key = keys[field as keyof typeof keys];
  const by = direction === 'desc' ? desc : asc;
  const rows = await db
    .select({ id: e.id, startTime: e.startTime, endKey: e.endKey, durationKey: e.durationKey, title: e.title })
    .from(e)
    .where(eq(e.userId, userId))
    .orderBy(by(key), by(e.id))
    .limit(length)
    .offset(n - 1);
  if (rows.length === 0) throw new Error(`the heavy user has no row ${n} in ${ordering}`);
  return rows.map((row) => ({
    id: row.id,
    sortKey: { start_time: row.startTime, end_time: row.endKey, duration: row.durationKey, title: row.title }[field as keyof typeof keys],
  }));
}

/** The cursor of the page after `row`, as the API encodes it ({o, k, i}). */
function cursorAfter(ordering: TimeEntryOrdering, row: Row): string {
  const k = row.sortKey instanceof Date ? row.sortKey.getTime() : (row.sortKey as string | number);
  return encodeCursor({ o: ordering, k: typeof k === 'string' ? k : Number(k), i: row.id });
}

function scenarios(seeded: Seeded, deep: Record<string, string>): Scenario[] {
  // A month in the middle of the heavy user's years.
  const middle = new Date((seeded.firstStart.getTime() + seeded.lastStart.getTime()) / 2);
  const monthStart = new Date(Date.UTC(middle.getUTCFullYear(), middle.getUTCMonth(), 1));
  const monthEnd = new Date(Date.UTC(middle.getUTCFullYear(), middle.getUTCMonth() + 1, 0));
  const day = (d: Date) => d.toISOString().slice(0, 10);
  const list: Scenario[] = [
    { id: 'light-page-1', label: 'light user (100 entries): default page', group: 'pages', user: 'light', params: {} },
    { id: 'heavy-page-1', label: `heavy user (${count(HEAVY_ENTRIES)}): page 1`, group: 'pages', user: 'heavy', params: {} },
    {
      id: 'heavy-deep',
      label: `heavy user: page at row ${count(DEEP_ROW)}`,
      group: 'pages',
      user: 'heavy',
      params: { cursor: deep['-start_time'] },
    },
    {
      id: 'filter-start-dates',
      label: `start_date_after/before: one month (${day(monthStart).slice(0, 7)})`,
      group: 'filters',
      user: 'heavy',
      params: { start_date_after: day(monthStart), start_date_before: day(monthEnd) },
    },
    {
      id: 'filter-end-dates',
      label: `end_date_after/before: the same month`,
      group: 'filters',
      user: 'heavy',
      params: { end_date_after: day(monthStart), end_date_before: day(monthEnd) },
    },
    {
      id: 'filter-duration',
      label: 'duration_min=01:00:00 & duration_max=02:00:00',
      group: 'filters',
      user: 'heavy',
      params: { duration_min: '01:00:00', duration_max: '02:00:00' },
    },
    { id: 'filter-project', label: 'project (the largest)', group: 'filters', user: 'heavy', params: { project: String(seeded.heavyProjects[0]) } },
    { id: 'filter-tags', label: 'tags (one tag)', group: 'filters', user: 'heavy', params: { tags: String(seeded.heavyTags[0]) } },
    { id: 'filter-active', label: 'is_active=true (the running entry)', group: 'filters', user: 'heavy', params: { is_active: 'true' } },
    { id: 'filter-finished', label: 'is_active=false (all but one)', group: 'filters', user: 'heavy', params: { is_active: 'false' } },
  ];
  for (const ordering of OTHER_ORDERINGS) {
    list.push(
      { id: `order${ordering}-page-1`, label: `ordering=${ordering}: page 1`, group: 'orderings', user: 'heavy', params: { ordering } },
      {
        id: `order${ordering}-deep`,
        label: `ordering=${ordering}: page at row ${count(DEEP_ROW)}`,
        group: 'orderings',
        user: 'heavy',
        params: { ordering, cursor: deep[ordering] },
      },
    );
  }
  return list;
}

interface ListBody {
  count: number;
  results: Array<{ id: number }>;
}

/** Every scenario over HTTP, interleaved (see sampleInterleaved), each on its own keep-alive connection. */
async function measureHttp(port: number, seeded: Seeded, list: Scenario[]): Promise<HttpFigure[]> {
  const prepared = list.map((scenario) => {
    const query = new URLSearchParams(scenario.params).toString();
    return {
      scenario,
      path: `/api/time_entries/${query ? `?${query}` : ''}`,
      agent: new http.Agent({ keepAlive: true, maxSockets: 1, noDelay: true }),
      first: undefined as ListBody | undefined,
    };
  });
  try {
    const latencies = await sampleInterleaved(
      prepared.map((p) => ({
        id: p.scenario.id,
        once: async (i: number) => {
          // The light figure takes a different light user each time.
          const token = p.scenario.user === 'heavy' ? seeded.heavy.token : seeded.light[i % seeded.light.length].token;
          const answer = await getJson<ListBody>(p.agent, port, p.path, token);
          if (answer.status !== 200) throw new Error(`${p.path} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
          p.first ??= answer.body;
        },
      })),
      { samples: SAMPLES, warmUp: WARM_UP, budgetMs: BUDGET_MS, minSamples: MIN_SAMPLES },
    );
    return prepared.map((p) => ({
      id: p.scenario.id,
      label: p.scenario.label,
      group: p.scenario.group,
      path: p.path,
      latency: latencies.get(p.scenario.id)!,
      count: p.first!.count,
      results: p.first!.results.length,
      firstId: p.first!.results[0]?.id ?? null,
    }));
  } finally {
    for (const p of prepared) p.agent.destroy();
  }
}

/** The plan of a query: Postgres EXPLAIN (ANALYZE, BUFFERS) — it runs once more — or SQLite's EXPLAIN QUERY PLAN. */
async function planOf(store: Store, query: SQLWrapper): Promise<string> {
  if (store.dialect === 'postgres') {
    const result = await store.db.execute(sql`explain (analyze, buffers) ${query}`);
    return result.rows.map((row) => String(row['QUERY PLAN'])).join('\n');
  }
  // drizzle wraps an embedded query in parentheses, which SQLite's EXPLAIN does not take: ask the driver.
  const { sql: text, params } = (query as unknown as { toSQL(): { sql: string; params: unknown[] } }).toSQL();
  const sqlite = (store.db as unknown as { $client: { prepare(text: string): { all(...params: unknown[]): Array<{ detail: string }> } } }).$client;
  return sqlite
    .prepare(`explain query plan ${text}`)
    .all(...params)
    .map((row) => row.detail)
    .join('\n');
}

async function runDialect(label: string, databaseUrl: string, database: string): Promise<DialectRun> {
  const store = await openDatabase(databaseUrl);
  const forgetStore = cleanups.add(`${label}: close the store`, () => store.close());
  try {
    const { db, t } = store;
    const e = t.timeEntries;
    const writer = store.dialect === 'postgres' ? SEED_WRITER_PG : 'insertAll';
    const seedStarted = now();
    let lastLogged = 0;
    const seeded = await withDeadline(`${label}: seed ${count(HEAVY_ENTRIES)} + ${LIGHT_USERS}×${LIGHT_ENTRIES} entries (${writer})`, MAX_MS, () =>
      seedTimeEntries(store, {
        heavyEntries: HEAVY_ENTRIES,
        lightUsers: LIGHT_USERS,
        lightEntries: LIGHT_ENTRIES,
        chunk: SEED_CHUNK,
        writer,
        progress: (written, total) => {
          if (now() - lastLogged < 15_000 && written < total) return;
          lastLogged = now();
          log(`${label}: ${count(written)} / ${count(total)} entries (${fmt((now() - seedStarted) / 1000)} s)`);
        },
      }),
    );
    const seedMs = now() - seedStarted;

    // The kept counts must be what count(*) says.
    const kept = await db.select({ userId: t.timeEntryCounts.userId, entries: t.timeEntryCounts.entries }).from(t.timeEntryCounts);
    const counted = await db.select({ userId: e.userId, entries: countAll() }).from(e).groupBy(e.userId);
    const keptOf = new Map(kept.map((row) => [row.userId, Number(row.entries)]));
    const countedOf = new Map(counted.map((row) => [row.userId, Number(row.entries)]));
    const lightMismatches = seeded.light.filter((u) => keptOf.get(u.id) !== LIGHT_ENTRIES || countedOf.get(u.id) !== LIGHT_ENTRIES).length;
    const countCheck = {
      heavyKept: keptOf.get(seeded.heavy.id) ?? 0,
      heavyCounted: countedOf.get(seeded.heavy.id) ?? 0,
      lightMismatches,
      ok: keptOf.get(seeded.heavy.id) === HEAVY_ENTRIES && countedOf.get(seeded.heavy.id) === HEAVY_ENTRIES && lightMismatches === 0,
    };
    log(`${label}: kept count ${count(countCheck.heavyKept)}, count(*) ${count(countCheck.heavyCounted)}, light mismatches ${lightMismatches}`);
    if (!countCheck.ok) throw new Error(`${label}: the kept counts do not match the entries: ${JSON.stringify(countCheck)}`);

    // The deep cursors: row DEEP_ROW's key, read once per ordering.
    const deep: Record<string, string> = {};
    const expectedDeepIds: Record<string, number[]> = {};
    const deepKeyReadMs: Record<string, number> = {};
    for (const ordering of DEEP_ORDERINGS) {
      const started = now();
      const [at, ...after] = await rowsFrom(store, seeded.heavy.id, ordering, DEEP_ROW, PAGE + 1);
      deepKeyReadMs[ordering] = Math.round(now() - started);
      deep[ordering] = cursorAfter(ordering, at);
      expectedDeepIds[ordering] = after.map((row) => row.id);
    }

    // The real app on loopback.
    const deps = { store, logger: pino({ level: 'silent' }), rateLimits: false, checkAnswers: false };
    const app = createApp(deps, createServices(deps));
    const server: Server = createServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: '127.0.0.1' }, resolve);
    });
    const forgetServer = cleanups.add(`${label}: close the server`, () => {
      server.closeAllConnections();
      server.close();
    });
    const port = (server.address() as AddressInfo).port;

    let httpFigures: HttpFigure[] = [];
    const list = scenarios(seeded, deep);
    try {
      httpFigures = await withDeadline(`${label}: ${list.length} list figures over HTTP, interleaved`, MAX_MS, () => measureHttp(port, seeded, list));
      for (const figure of httpFigures) {
        log(`${label}: ${figure.label}: p50 ${fmt(figure.latency.p50Ms, 2)} ms, p99 ${fmt(figure.latency.p99Ms, 2)} ms (n=${figure.latency.samples}; count ${count(figure.count)})`);
      }
    } finally {
      server.closeAllConnections();
      server.close();
      forgetServer();
    }

    // On the database: keyset (the page's own queries) against OFFSET (+ count(*)) at the same depths.
    const heavyId = seeded.heavy.id;
    const keptCount = (userId: number) => db.select({ entries: t.timeEntryCounts.entries }).from(t.timeEntryCounts).where(eq(t.timeEntryCounts.userId, userId));
    const countStar = () => db.select({ total: countAll() }).from(e).where(eq(e.userId, heavyId));
    const offsetPage = (offset: number) =>
      db
        .select({ entry: e, projectName: t.projects.title })
        .from(e)
        .leftJoin(t.projects, eq(t.projects.id, e.projectId))
        .where(eq(e.userId, heavyId))
        .orderBy(desc(e.startTime), desc(e.id))
        .limit(PAGE)
        .offset(offset);
    const keysetQuery = (cursor?: string, ordering: TimeEntryOrdering = '-start_time'): TimeEntryListQuery =>
      listQuery.parse({ ordering, ...(cursor ? { cursor } : {}) });
    const keysetPage = (cursor?: string, ordering?: TimeEntryOrdering) => pageQuery(store, heavyId, keysetQuery(cursor, ordering)).rows;

    const deepPageCheck: DialectRun['deepPageCheck'] = {};
    for (const ordering of DEEP_ORDERINGS) {
      const keysetIds = (await keysetPage(deep[ordering], ordering)).slice(0, PAGE).map((row) => row.entry.id);
      const offsetIds = expectedDeepIds[ordering];
      const httpFirstId = httpFigures.find((f) => f.id === deepScenarioId(ordering))?.firstId ?? null;
      const ok = keysetIds.length === PAGE && keysetIds.join() === offsetIds.join() && httpFirstId === offsetIds[0];
      deepPageCheck[ordering] = { offsetIds, keysetIds, httpFirstId, ok };
      if (!ok) log(`${label}: WARNING: ${ordering}: the keyset deep page is not OFFSET ${DEEP_ROW}'s page: ${JSON.stringify(deepPageCheck[ordering])}`);
    }

    const dbCases: Array<{ id: string; label: string; run: (i: number) => Promise<unknown> }> = [
      {
        id: 'db-light-page-1',
        label: 'light user: keyset page 1 + kept count',
        run: (i) => {
          const userId = seeded.light[i % seeded.light.length].id;
          return Promise.all([pageQuery(store, userId, keysetQuery()).rows, keptCount(userId)]);
        },
      },
      { id: 'db-keyset-page-1', label: 'heavy: keyset page 1 + kept count', run: () => Promise.all([keysetPage(), keptCount(heavyId)]) },
      {
        id: 'db-keyset-deep',
        label: `heavy: keyset page at row ${count(DEEP_ROW)} + kept count`,
        run: () => Promise.all([keysetPage(deep['-start_time']), keptCount(heavyId)]),
      },
      ...OTHER_ORDERINGS.flatMap((ordering) => [
        {
          id: `db-order${ordering}-page-1`,
          label: `heavy, ordering=${ordering}: keyset page 1 + kept count`,
          run: () => Promise.all([keysetPage(undefined, ordering), keptCount(heavyId)]),
        },
        {
          id: `db-order${ordering}-deep`,
          label: `heavy, ordering=${ordering}: keyset page at row ${count(DEEP_ROW)} + kept count`,
          run: () => Promise.all([keysetPage(deep[ordering], ordering), keptCount(heavyId)]),
        },
      ]),
      { id: 'db-offset-page-1', label: 'heavy: OFFSET 0 + count(*)', run: () => Promise.all([offsetPage(0), countStar()]) },
      { id: 'db-offset-deep', label: `heavy: OFFSET ${count(DEEP_ROW)} + count(*)`, run: () => Promise.all([offsetPage(DEEP_ROW), countStar()]) },
      { id: 'db-offset-deep-rows', label: `heavy: OFFSET ${count(DEEP_ROW)} alone`, run: () => offsetPage(DEEP_ROW) },
      { id: 'db-count-star', label: 'heavy: count(*) alone', run: () => countStar() },
    ];
    const dbLatencies = await withDeadline(`${label}: ${dbCases.length} figures on the database, interleaved`, MAX_MS, () =>
      sampleInterleaved(
        dbCases.map((c) => ({ id: c.id, once: c.run })),
        { samples: SAMPLES, warmUp: WARM_UP, budgetMs: BUDGET_MS, minSamples: MIN_SAMPLES },
      ),
    );
    const dbFigures: DbFigure[] = dbCases.map((c) => ({ id: c.id, label: c.label, latency: dbLatencies.get(c.id)! }));
    for (const f of dbFigures) log(`${label}: db ${f.label}: p50 ${fmt(f.latency.p50Ms, 2)} ms, p99 ${fmt(f.latency.p99Ms, 2)} ms (n=${f.latency.samples})`);

    // The plans of what was measured: each figure's page query, and the count of the filtered ones.
    const plans: Plan[] = [];
    await withDeadline(`${label}: query plans`, MAX_MS, async () => {
      for (const scenario of list) {
        const userId = scenario.user === 'heavy' ? heavyId : seeded.light[0].id;
        const parsed = listQuery.parse(scenario.params);
        plans.push({ id: scenario.id, query: 'page', plan: await planOf(store, pageQuery(store, userId, parsed).rows) });
        if (scenario.group === 'filters') {
          const counting = db.select({ total: countAll() }).from(e).where(filterCondition(t, userId, parsed));
          plans.push({ id: scenario.id, query: 'count', plan: await planOf(store, counting) });
        }
      }
      plans.push({ id: 'db-offset-deep', query: 'page', plan: await planOf(store, offsetPage(DEEP_ROW)) });
      plans.push({ id: 'db-count-star', query: 'count', plan: await planOf(store, countStar()) });
    });

    const version =
      store.dialect === 'postgres'
        ? String((await db.execute(sql`show server_version`)).rows[0]?.server_version ?? '')
        : String((db as unknown as { $client: { prepare(q: string): { pluck(): { get(): unknown } } } }).$client.prepare('select sqlite_version()').pluck().get());
    return {
      dialect: store.dialect,
      version,
      database,
      seed: {
        writer,
        entries: seeded.entries,
        tagLinks: seeded.tagLinks,
        setupMs: Math.round(seeded.setupMs),
        entriesMs: Math.round(seeded.entriesMs),
        vacuumMs: Math.round(seeded.vacuumMs),
        totalMs: Math.round(seedMs),
        entriesPerSecond: Math.round(seeded.entries / (seeded.entriesMs / 1000)),
      },
      countCheck,
      deepKeyReadMs,
      deepPageCheck,
      http: httpFigures,
      db: dbFigures,
      plans,
      loadAverageAfter: os.loadavg().map((n) => Math.round(n * 100) / 100),
    };
  } finally {
    await store.close().catch(() => {});
    forgetStore();
  }
}

async function runPostgres(): Promise<DialectRun> {
  const database = await createThrowawayDatabase(POSTGRES_URL, 'bench_te');
  const forget = cleanups.add(`drop database ${database.name}`, database.drop);
  try {
    return await runDialect('postgres', database.url, database.name);
  } finally {
    await database.drop();
    forget();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

interface Results {
  date: string;
  machine: Machine;
  /** The code measured: HEAD, and the files under server/, db/ and contract/ changed from it at the start. */
  code: CodeUnderTest;
  config: {
    heavyEntries: number;
    lightUsers: number;
    lightEntries: number;
    deepRow: number;
    samples: number;
    warmUp: number;
    slowFigureBudgetMs: number;
    minSamples: number;
    pageSize: number;
    transport: string;
  };
  sqlite: DialectRun | null;
  postgres: DialectRun | null;
  failures: Record<string, string>;
  totalSeconds: number;
}

const latencyCell = (l: LatencySummary | undefined) => (l ? `${fmt(l.p50Ms, 1)} / ${fmt(l.p99Ms, 1)}` : '—');
const httpOf = (run: DialectRun | null, id: string) => run?.http.find((f) => f.id === id);
const dbOf = (run: DialectRun | null, id: string) => run?.db.find((f) => f.id === id);

function figureRows(results: Results): string[][] {
  const rows: string[][] = [];
  const ids = (results.sqlite ?? results.postgres)?.http ?? [];
  for (const figure of ids) {
    const s = httpOf(results.sqlite, figure.id);
    const p = httpOf(results.postgres, figure.id);
    rows.push([`HTTP ${figure.label}`, count(s?.count ?? p?.count ?? 0), latencyCell(s?.latency), latencyCell(p?.latency)]);
  }
  for (const figure of (results.sqlite ?? results.postgres)?.db ?? []) {
    const s = dbOf(results.sqlite, figure.id);
    const p = dbOf(results.postgres, figure.id);
    rows.push([`DB ${figure.label}`, '', latencyCell(s?.latency), latencyCell(p?.latency)]);
  }
  return rows;
}

function ratioOf(a: LatencySummary | undefined, b: LatencySummary | undefined): number | undefined {
  if (!a || !b || !(b.p50Ms > 0)) return undefined;
  return a.p50Ms / b.p50Ms;
}

function ratioCell(value: number | undefined, target?: number): string {
  if (value === undefined) return '—';
  const text = `${fmt(value, value >= 10 ? 0 : 2)}×`;
  return target === undefined ? text : `${text} ${value <= target ? '✓' : '✗'}`;
}

type Ratio = (run: DialectRun | null) => number | undefined;
const httpRatio = (a: string, b: string): Ratio => (run) => ratioOf(httpOf(run, a)?.latency, httpOf(run, b)?.latency);
const dbRatio = (a: string, b: string): Ratio => (run) => ratioOf(dbOf(run, a)?.latency, dbOf(run, b)?.latency);

function ratioRows(results: Results): string[][] {
  const rows: string[][] = [];
  /** A ratio in the HTTP column and one in the DB column, per dialect; `target` marks each ✓ or ✗. */
  const add = (label: string, http: Ratio | null, db: Ratio | null, target?: number, targetText = '') => {
    const cells: string[] = [label];
    for (const run of [results.sqlite, results.postgres]) {
      cells.push(http ? ratioCell(http(run), target) : '—', db ? ratioCell(db(run), target) : '—');
    }
    rows.push([...cells, targetText]);
  };
  const deep = count(DEEP_ROW);
  add(`heavy page at row ${deep} ÷ heavy page 1`, httpRatio('heavy-deep', 'heavy-page-1'), dbRatio('db-keyset-deep', 'db-keyset-page-1'), 1.5, '≤ 1.5×');
  add('heavy page 1 (with count) ÷ light page 1', httpRatio('heavy-page-1', 'light-page-1'), dbRatio('db-keyset-page-1', 'db-light-page-1'), 3, '≤ 3×');
  add(
    `OFFSET ${deep} + count(*) on the DB ÷ keyset page at row ${deep} (HTTP: the API's answer; DB: its queries)`,
    (run) => ratioOf(dbOf(run, 'db-offset-deep')?.latency, httpOf(run, 'heavy-deep')?.latency),
    dbRatio('db-offset-deep', 'db-keyset-deep'),
    undefined,
    'baseline',
  );
  add('OFFSET 0 + count(*) on the DB ÷ keyset page 1 (likewise)', (run) => ratioOf(dbOf(run, 'db-offset-page-1')?.latency, httpOf(run, 'heavy-page-1')?.latency), dbRatio('db-offset-page-1', 'db-keyset-page-1'), undefined, 'baseline');
  for (const ordering of OTHER_ORDERINGS) {
    add(
      `ordering=${ordering}: page at row ${deep} ÷ page 1`,
      httpRatio(`order${ordering}-deep`, `order${ordering}-page-1`),
      dbRatio(`db-order${ordering}-deep`, `db-order${ordering}-page-1`),
      1.5,
      '≤ 1.5× (same rule)',
    );
  }
  return rows;
}

const FIGURE_HEADER = ['Request (p50 / p99 ms)', 'count', 'SQLite', 'Postgres'];
const RATIO_HEADER = ['Ratio of p50s', 'SQLite, HTTP', 'SQLite, DB', 'Postgres, HTTP', 'Postgres, DB', 'Target'];

function details(results: Results): string[] {
  const lines: string[] = [];
  for (const run of [results.sqlite, results.postgres]) {
    if (!run) continue;
    const s = run.seed;
    lines.push(
      `${run.dialect} seed (${s.writer}): ${count(s.entries)} entries and ${count(s.tagLinks)} tag links in ${fmt(s.entriesMs / 1000)} s ` +
        `(${count(s.entriesPerSecond)} entries/s, through the per-row count trigger); users, tokens, projects, tags ${fmt(s.setupMs / 1000)} s` +
        (s.vacuumMs ? `; VACUUM ANALYZE ${fmt(s.vacuumMs / 1000)} s` : '') +
        `; total ${fmt(s.totalMs / 1000)} s`,
    );
    lines.push(
      `${run.dialect} counts: kept ${count(run.countCheck.heavyKept)} = count(*) ${count(run.countCheck.heavyCounted)} for the heavy user; ` +
        `${run.countCheck.lightMismatches} light users off → ${run.countCheck.ok ? 'ok' : 'MISMATCH'}`,
    );
    lines.push(
      `${run.dialect} deep cursors: row ${count(DEEP_ROW)}'s key read once by OFFSET in ` +
        Object.entries(run.deepKeyReadMs)
          .map(([ordering, ms]) => `${ordering} ${count(ms)} ms`)
          .join(', ') +
        `; the keyset page after it = OFFSET ${count(DEEP_ROW)}'s page (on the database, and its first row over HTTP): ` +
        Object.entries(run.deepPageCheck)
          .map(([ordering, check]) => `${ordering} ${check.ok ? 'yes' : 'NO'}`)
          .join(', '),
    );
    lines.push(`${run.dialect} ${run.version}; load average after its run: ${run.loadAverageAfter.join(', ')}`);
    const spread = (l: LatencySummary) =>
      `n=${l.samples} min ${l.minMs} p50 ${l.p50Ms} p90 ${l.p90Ms} p99 ${l.p99Ms} max ${l.maxMs} mean ${l.meanMs} ms`;
    for (const f of run.http) {
      lines.push(`${run.dialect} GET ${f.path.length > 120 ? `${f.path.slice(0, 117)}…` : f.path}: ${spread(f.latency)}; count ${count(f.count)}, ${f.results} rows`);
    }
    for (const f of run.db) lines.push(`${run.dialect} DB ${f.label}: ${spread(f.latency)}`);
  }
  for (const [part, error] of Object.entries(results.failures)) lines.push(`FAILED ${part}: ${error}`);
  return lines;
}

function header(results: Results): string[] {
  const m = results.machine;
  return [
    `${results.date} — ${m.platform} ${m.release} ${m.arch}, ${m.cpus} CPUs (${m.cpuModel}), ${m.totalMemGiB} GiB RAM, Node ${m.node}; ` +
      `load average at start ${m.loadAverageAtStart.join(', ')} (a shared machine: compare ratios, not absolute times).`,
    `Code: ${results.code.commit}${results.code.uncommitted.length ? ` with uncommitted changes (${results.code.uncommitted.join('; ')})` : ''}. ` +
      `One heavy user with ${count(HEAVY_ENTRIES)} entries, ${LIGHT_USERS} light users with ${LIGHT_ENTRIES} each. ${results.config.transport}. ` +
      `${SAMPLES} timed requests per figure after ${WARM_UP} untimed, the figures interleaved round by round (a slow one stops after ${BUDGET_MS / 1000} s of samples, with at least ${MIN_SAMPLES}); ` +
      `with n ≤ 100 the p99 is the slowest sample. "count" is what the answer reported.`,
  ];
}

function markdown(results: Results): string {
  const planLines: string[] = [];
  for (const run of [results.sqlite, results.postgres]) {
    if (!run) continue;
    planLines.push(`### ${run.dialect}`, '');
    for (const plan of run.plans) planLines.push(`${plan.id} (${plan.query}):`, '', '```', plan.plan, '```', '');
  }
  return [
    '# Time-entries list benchmark',
    '',
    ...header(results),
    '',
    table(FIGURE_HEADER, figureRows(results)),
    '',
    table(RATIO_HEADER, ratioRows(results)),
    '',
    ...details(results).map((line) => `- ${line}`),
    '',
    '## Query plans',
    '',
    'Postgres: EXPLAIN (ANALYZE, BUFFERS), run once after the timings; SQLite: EXPLAIN QUERY PLAN.',
    '',
    ...planLines,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const started = now();
  const dir = mkdtempSync(join(os.tmpdir(), 'punchclock-bench-te-'));
  cleanups.add('temp SQLite files', () => rmSync(dir, { recursive: true, force: true }));
  const results: Results = {
    date: new Date().toISOString(),
    machine: machine(),
    code: codeUnderTest(),
    config: {
      heavyEntries: HEAVY_ENTRIES,
      lightUsers: LIGHT_USERS,
      lightEntries: LIGHT_ENTRIES,
      deepRow: DEEP_ROW,
      samples: SAMPLES,
      warmUp: WARM_UP,
      slowFigureBudgetMs: BUDGET_MS,
      minSamples: MIN_SAMPLES,
      pageSize: PAGE,
      transport:
        'HTTP figures: sequential GET /api/time_entries/ over one keep-alive loopback connection to the real app in the same process; ' +
        'DB figures: the same queries through drizzle, no HTTP',
    },
    sqlite: null,
    postgres: null,
    failures: {},
    totalSeconds: 0,
  };
  const sqliteFile = join(dir, 'time-entries.sqlite');
  results.sqlite = await attempt(results.failures, 'sqlite', () => runDialect('sqlite', `sqlite:${sqliteFile}`, sqliteFile));
  rmSync(dir, { recursive: true, force: true });
  if (!SKIP_POSTGRES) results.postgres = await attempt(results.failures, 'postgres', () => runPostgres());
  results.totalSeconds = Math.round((now() - started) / 100) / 10;

  const out = [
    '',
    'Punchclock time-entries list benchmark',
    ...header(results),
    '',
    table(FIGURE_HEADER, figureRows(results)),
    '',
    table(RATIO_HEADER, ratioRows(results)),
    '',
    ...details(results),
    '',
    `Total ${results.totalSeconds} s. Results (with the query plans): bench/results/${RESULTS_NAME}.json, bench/results/${RESULTS_NAME}.md`,
    '',
  ].join('\n');
  process.stdout.write(out);
  writeResults(RESULTS_NAME, results, markdown(results));
  return Object.keys(results.failures).length === 0 ? 0 : 1;
}

await runBenchmark(main, cleanups, MAX_MS);

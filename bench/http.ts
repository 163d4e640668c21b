// The request-path benchmark: `npm run bench:http` (issue 18).
//
// What one request costs in the app beyond the work it does, in two routes: an authenticated read
// (GET /auth/users/me/: the token, a small JSON) and a write (POST /api/notifications/test/: a JSON
// body parsed and validated, one row inserted, the answer). The real server is server/main.ts in
// its own process (in-memory bus, RATE_LIMITS=off, LOG_LEVEL=warn so that no access line is
// written); the floor, in the same run, a bare express process doing the same work and nothing else
// (bench/support/bare-http-server.ts: the same body for the read; express.json and one
// better-sqlite3 insert for the write). autocannon loads each case in interleaved rounds
// (bench/support/rates.ts); the figure is the median round, the share real ÷ bare the median of the
// shares within each round. The read on SQLite and on Postgres (a throw-away database), the write on
// SQLite (the floor inserts into SQLite). Writes bench/results/http.{json,md}.
//
// Environment (all optional):
//   BENCH_CONNECTIONS    autocannon connections, default 50
//   BENCH_SECONDS        seconds per case and round, default 5
//   BENCH_ROUNDS         rounds, default 5 (after one untimed warm-up round of 2 s per case)
//   BENCH_POSTGRES_URL   server to create the throw-away database on, default postgres://postgres@127.0.0.1:5432/test
//   BENCH_SKIP_POSTGRES  "1" to leave out Postgres
//   BENCH_MAX_MINUTES    the run is stopped after this, default 10
//   BENCH_RESULTS_NAME   file name of the results under bench/results/, default "http"
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDatabase, type Dialect } from '../db/open-database';
import { createServices } from '../server/app';
import { attempt, Cleanups, codeUnderTest, envInt, fmt, log, machine, now, resultsName, runBenchmark, table, writeResults } from './support/measure';
import { measureRates, type RateFigure } from './support/rates';
import { startServerProcess } from './support/server-process';
import { createThrowawayDatabase } from './support/throwaway-database';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50);
const SECONDS = envInt('BENCH_SECONDS', 5);
const ROUNDS = envInt('BENCH_ROUNDS', 5);
const WARM_UP_SECONDS = 2;
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SKIP_POSTGRES = process.env.BENCH_SKIP_POSTGRES === '1';
const MAX_MS = envInt('BENCH_MAX_MINUTES', 10) * 60_000;
/** Issue 18's targets: the read at least 70 % of the bare route's rate, the write at least 50 %. */
const TARGETS = { read: 0.7, write: 0.5 };
const RESULTS_NAME = resultsName('http');

const ME = '/auth/users/me/';
const SEND_TEST = '/api/notifications/test/';
const WRITE_BODY = JSON.stringify({ message: 'A notification of a benchmark, about as long as a real one.', type: 'INFO' });

const cleanups = new Cleanups();

interface DialectResult {
  rates: Record<string, RateFigure>;
  shares: { read: number; write?: number };
}

/** A user with a token, made through the services (one password hash). */
async function seed(databaseUrl: string): Promise<string> {
  const store = await openDatabase(databaseUrl);
  try {
    const services = createServices({ store, logger: pino({ level: 'silent' }), rateLimits: false });
    const user = await services.auth.register({ username: 'bench_http', password: 'bench password that nobody types' });
    return await services.sessions.open(user.id);
  } finally {
    await store.close();
  }
}

async function runDialect(dialect: Dialect, databaseUrl: string, dir: string): Promise<DialectResult> {
  const token = await seed(databaseUrl);
  const app = await startServerProcess('server/main.ts', { DATABASE_URL: databaseUrl, RATE_LIMITS: 'off', LOG_LEVEL: 'warn', REDIS_URL: '' });
  const stopApp = cleanups.add(`${dialect} server`, () => app.stop());
  const headers = { Authorization: `Token ${token}` };
  const me = await fetch(`${app.url}${ME}`, { headers });
  if (me.status !== 200) throw new Error(`GET ${ME} answered ${me.status}`);
  const bare = await startServerProcess('bench/support/bare-http-server.ts', { BENCH_ME: JSON.stringify(await me.json()), BENCH_SQLITE: join(dir, `bare-${dialect}.sqlite`) });
  const stopBare = cleanups.add(`${dialect} bare server`, () => bare.stop());
  const write = { method: 'POST' as const, headers: { ...headers, 'Content-Type': 'application/json' }, body: WRITE_BODY };
  const withWrite = dialect === 'sqlite';
  try {
    const { figures, share } = await measureRates(
      {
        read: { url: `${app.url}${ME}`, headers },
        readBare: { url: `${bare.url}${ME}`, headers },
        ...(withWrite ? { write: { url: `${app.url}${SEND_TEST}`, ...write }, writeBare: { url: `${bare.url}${SEND_TEST}`, ...write } } : {}),
      } as Record<'read' | 'readBare' | 'write' | 'writeBare', Parameters<typeof measureRates>[0][string]>,
      { connections: CONNECTIONS, secondsPerRound: SECONDS, rounds: ROUNDS, warmUpSeconds: WARM_UP_SECONDS, label: dialect },
    );
    return { rates: figures, shares: { read: share('read', 'readBare'), write: withWrite ? share('write', 'writeBare') : undefined } };
  } finally {
    await bare.stop();
    stopBare();
    await app.stop();
    stopApp();
  }
}

function report(results: { date: string; code: ReturnType<typeof codeUnderTest>; machine: ReturnType<typeof machine>; sqlite: DialectResult | null; postgres: DialectResult | null; failures: Record<string, string>; totalSeconds: number }): string {
  const m = results.machine;
  const cells = (result: DialectResult | null, real: string, floor: string, share: 'read' | 'write') =>
    result?.rates[real] && result.shares[share] !== undefined
      ? [fmt(result.rates[real].medianRps, 0), fmt(result.rates[floor].medianRps, 0), `${fmt(result.shares[share]! * 100, 0)} %`]
      : ['—', '—', '—'];
  const row = (label: string, real: string, floor: string, share: 'read' | 'write') => [
    label,
    ...cells(results.sqlite, real, floor, share),
    ...cells(results.postgres, real, floor, share),
  ];
  const verdicts = (['sqlite', 'postgres'] as const).flatMap((dialect) =>
    (['read', 'write'] as const).flatMap((kind) => {
      const share = results[dialect]?.shares[kind];
      return share === undefined ? [] : [`- ${dialect} ${kind}: ${fmt(share * 100, 0)} % of bare express (target ≥ ${TARGETS[kind] * 100} %): ${share >= TARGETS[kind] ? 'met' : 'NOT met'}`];
    }),
  );
  return [
    '# Punchclock request-path benchmark',
    '',
    `${results.date}, commit ${results.code.commit}${results.code.uncommitted.length ? ' (with uncommitted changes)' : ''}; ${m.cpus} × ${m.cpuModel}, ${m.totalMemGiB} GiB, Node ${m.node}, load ${m.loadAverageAtStart.join(' / ')} at start.`,
    `autocannon, ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s per case (median round), after ${WARM_UP_SECONDS} s of warm-up each. The real server is server/main.ts in its own process (in-memory bus, rate limits off, no access log); the floor a bare express process doing the same work (bench/support/bare-http-server.ts).`,
    '',
    table(
      ['route (50 connections)', 'SQLite req/s', 'bare express', 'share', 'Postgres req/s', 'bare express', 'share'],
      [row(`GET ${ME} (token, small JSON)`, 'read', 'readBare', 'read'), row(`POST ${SEND_TEST} (one insert)`, 'write', 'writeBare', 'write')],
    ),
    '',
    ...verdicts,
    ...Object.entries(results.failures).map(([part, error]) => `- ${part} FAILED: ${error.split('\n')[0]}`),
    '',
    `Total ${results.totalSeconds} s.`,
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const started = now();
  const results = { date: new Date().toISOString(), code: codeUnderTest(), machine: machine(), sqlite: null as DialectResult | null, postgres: null as DialectResult | null, failures: {} as Record<string, string>, totalSeconds: 0 };
  const dir = mkdtempSync(join(os.tmpdir(), 'punchclock-bench-http-'));
  cleanups.add('temp SQLite files', () => rmSync(dir, { recursive: true, force: true }));
  results.sqlite = await attempt(results.failures, 'sqlite', () => runDialect('sqlite', `sqlite:${join(dir, 'http.sqlite')}`, dir));
  if (!SKIP_POSTGRES) {
    results.postgres = await attempt(results.failures, 'postgres', async () => {
      const database = await createThrowawayDatabase(POSTGRES_URL, 'punchclock_bench_http');
      const drop = cleanups.add('throw-away Postgres database', () => database.drop());
      try {
        return await runDialect('postgres', database.url, dir);
      } finally {
        await database.drop();
        drop();
      }
    });
  }
  results.totalSeconds = Math.round((now() - started) / 100) / 10;
  const markdown = report(results);
  writeResults(RESULTS_NAME, results, markdown);
  console.log(`\n${markdown}`);
  log(`results: bench/results/${RESULTS_NAME}.json, bench/results/${RESULTS_NAME}.md`);
  return Object.keys(results.failures).length > 0 ? 1 : 0;
}

await runBenchmark(main, cleanups, MAX_MS);

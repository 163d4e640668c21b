// The feature-flag benchmark: `npm run bench:flags` (issue 14).
//
// Seeds one regular user with explicit access to 50 enabled flags (rollout 50 %, so both lists of
// my_features are filled), starts the real server (server/main.ts, its own process, RATE_LIMITS=off,
// LOG_LEVEL=warn so that no access line is written) and, as the baseline in the same run, a bare
// express app answering the very bodies the real server gave (bench/support/bare-json-server.ts).
// autocannon loads GET …/my_features/ and GET …/{key}/check/ on each, cache warm, in interleaved
// rounds (every case once per round, so each case's figures cover the same stretch of a noisy
// machine); the figure is the median round. Then, in this process, the evaluation cost per flag:
// the rollout hash alone, a warm my_features evaluation through the service, and a cold one
// (cache dropped before each). On SQLite (a temp file) and on Postgres (a throw-away database).
// Writes bench/results/flags.{json,md}.
//
// Environment (all optional):
//   BENCH_FLAGS          flags the user has, default 50
//   BENCH_CONNECTIONS    autocannon connections, default 50
//   BENCH_SECONDS        seconds per case and round, default 5
//   BENCH_ROUNDS         rounds, default 5 (after one untimed warm-up round of 2 s per case)
//   BENCH_POSTGRES_URL   server to create the throw-away database on, default postgres://postgres@127.0.0.1:5432/test
//   BENCH_SKIP_POSTGRES  "1" to leave out Postgres
//   BENCH_MAX_MINUTES    the run is stopped after this, default 10
//   BENCH_RESULTS_NAME   file name of the results under bench/results/, default "flags"
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDatabase, type Dialect } from '../db/open-database';
import { createServices } from '../server/app';
import type { AuthUser } from '../server/auth/auth.service';
import { inRollout } from '../server/feature-flags/rollout';
import { InMemoryBus } from '../server/realtime/bus';
import { attempt, Cleanups, codeUnderTest, type CodeUnderTest, envInt, fmt, log, machine, type Machine, now, resultsName, runBenchmark, table, writeResults } from './support/measure';
import { measureRates, type RateFigure } from './support/rates';
import { startServerProcess } from './support/server-process';
import { createThrowawayDatabase } from './support/throwaway-database';

const FLAGS = envInt('BENCH_FLAGS', 50);
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50);
const SECONDS = envInt('BENCH_SECONDS', 5);
const ROUNDS = envInt('BENCH_ROUNDS', 5);
const WARM_UP_SECONDS = 2;
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SKIP_POSTGRES = process.env.BENCH_SKIP_POSTGRES === '1';
const MAX_MS = envInt('BENCH_MAX_MINUTES', 10) * 60_000;
const RESULTS_NAME = resultsName('flags');
/** The target of issue 14: the real route at least this share of the bare one's rate. */
const TARGET_SHARE = 0.6;

const MINE = '/api/feature-flags/user-features/my_features/';
const checkPath = (key: string) => `/api/feature-flags/user-features/${key}/check/`;

const cleanups = new Cleanups();

interface Seeded {
  token: string;
  user: AuthUser;
  checkedKey: string;
}

interface EvaluationCost {
  /** One rollout bucket (MurmurHash3 of key:user id, mod 100). */
  rolloutHashNs: number;
  /** my_features's evaluation through the service, cache warm, divided by the flags. */
  warmPerFlagNs: number;
  /** The same with the cache dropped before each call (the database read included), per flag. */
  coldPerFlagNs: number;
  warmCalls: number;
  coldCalls: number;
}

interface DialectResult {
  rates: Record<'mine' | 'mineBare' | 'check' | 'checkBare', RateFigure>;
  /** Median over rounds of (real ÷ bare) taken within each round. */
  shareOfBare: { mine: number; check: number };
  evaluation: EvaluationCost;
}

interface Results {
  date: string;
  machine: Machine;
  code: CodeUnderTest;
  config: { flags: number; connections: number; secondsPerRound: number; rounds: number; warmUpSeconds: number; server: string };
  sqlite: DialectResult | null;
  postgres: DialectResult | null;
  failures: Record<string, string>;
  totalSeconds: number;
}

/** An admin, a regular user with a token, and FLAGS enabled flags at 50 % granted to the user. */
async function seed(databaseUrl: string): Promise<Seeded> {
  const store = await openDatabase(databaseUrl);
  try {
    const services = createServices({ store, logger: pino({ level: 'silent' }), rateLimits: false });
    const password = 'bench password that nobody types';
    const admin = await services.auth.register({ username: 'bench_admin', password, isAdmin: true });
    const user = await services.auth.register({ username: 'bench_user', password });
    const keys: string[] = [];
    for (let i = 0; i < FLAGS; i++) {
      const flag = await services.featureFlags.create(admin, {
        key: `bench_flag_${i}`,
        name: `Bench flag ${i}`,
        description: `What flag ${i} turns on, in a sentence or two as an administrator would write it.`,
        is_enabled: true,
        rollout_percentage: 50,
      });
      await services.featureFlags.grant(admin, flag.key, [user.id]);
      keys.push(flag.key);
    }
    const token = await services.auth.login('bench_user', password, '127.0.0.1');
    return { token, user, checkedKey: keys[Math.floor(keys.length / 2)] };
  } finally {
    await store.close();
  }
}

async function fetchBody(url: string, token: string): Promise<unknown> {
  const response = await fetch(url, { headers: { Authorization: `Token ${token}` } });
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

async function runDialect(dialect: Dialect, databaseUrl: string): Promise<DialectResult> {
  const seeded = await seed(databaseUrl);
  log(`${dialect}: seeded ${FLAGS} flags`);
  const app = await startServerProcess('server/main.ts', { DATABASE_URL: databaseUrl, RATE_LIMITS: 'off', LOG_LEVEL: 'warn', REDIS_URL: '' });
  const stopApp = cleanups.add(`${dialect} server`, () => app.stop());
  const bodies = {
    [MINE]: await fetchBody(`${app.url}${MINE}`, seeded.token),
    [checkPath(seeded.checkedKey)]: await fetchBody(`${app.url}${checkPath(seeded.checkedKey)}`, seeded.token),
  };
  const mine = bodies[MINE] as { enabled_features: unknown[]; total_features: number };
  if (mine.total_features !== FLAGS) throw new Error(`my_features lists ${mine.total_features} flags, not ${FLAGS}`);
  const bare = await startServerProcess('bench/support/bare-json-server.ts', { BENCH_BODIES: JSON.stringify(bodies) });
  const stopBare = cleanups.add(`${dialect} bare server`, () => bare.stop());

  const headers = { Authorization: `Token ${seeded.token}` };
  const { figures, share } = await measureRates(
    {
      mine: { url: `${app.url}${MINE}`, headers },
      mineBare: { url: `${bare.url}${MINE}`, headers },
      check: { url: `${app.url}${checkPath(seeded.checkedKey)}`, headers },
      checkBare: { url: `${bare.url}${checkPath(seeded.checkedKey)}`, headers },
    },
    { connections: CONNECTIONS, secondsPerRound: SECONDS, rounds: ROUNDS, warmUpSeconds: WARM_UP_SECONDS, label: dialect },
  );
  await bare.stop();
  stopBare();
  await app.stop();
  stopApp();

  return { rates: figures, shareOfBare: { mine: share('mine', 'mineBare'), check: share('check', 'checkBare') }, evaluation: await evaluationCost(databaseUrl, seeded) };
}

/** What evaluating one flag costs, measured in this process through the service. */
async function evaluationCost(databaseUrl: string, seeded: Seeded): Promise<EvaluationCost> {
  const store = await openDatabase(databaseUrl);
  const bus = new InMemoryBus();
  try {
    const flags = createServices({ store, logger: pino({ level: 'silent' }), rateLimits: false, bus }).featureFlags;
    const { enabled, disabled } = await flags.myFeatures(seeded.user);
    const all = [...enabled, ...disabled];

    const hashRounds = 20_000;
    let inside = 0;
    let started = now();
    for (let i = 0; i < hashRounds; i++) for (const flag of all) if (inRollout(flag, seeded.user.id + i)) inside++;
    const rolloutHashNs = ((now() - started) * 1e6) / (hashRounds * all.length);
    if (inside === 0) throw new Error('no user in any rollout: the hash loop measured nothing');

    const warmCalls = 20_000;
    started = now();
    for (let i = 0; i < warmCalls; i++) await flags.myFeatures(seeded.user);
    const warmPerFlagNs = ((now() - started) * 1e6) / (warmCalls * all.length);

    const coldCalls = 500;
    started = now();
    for (let i = 0; i < coldCalls; i++) {
      await bus.publish({ flagsChanged: true });
      await flags.myFeatures(seeded.user);
    }
    const coldPerFlagNs = ((now() - started) * 1e6) / (coldCalls * all.length);
    return { rolloutHashNs, warmPerFlagNs, coldPerFlagNs, warmCalls, coldCalls };
  } finally {
    await store.close();
  }
}

async function runPostgres(): Promise<DialectResult> {
  const database = await createThrowawayDatabase(POSTGRES_URL, 'punchclock_bench_flags');
  const drop = cleanups.add('throw-away Postgres database', () => database.drop());
  try {
    return await runDialect('postgres', database.url);
  } finally {
    await database.drop();
    drop();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

const RATE_HEADER = ['route (50 connections)', 'SQLite req/s', 'bare express', 'share', 'Postgres req/s', 'bare express', 'share'];

function rateRows(results: Results): string[][] {
  const cell = (result: DialectResult | null, real: 'mine' | 'check') =>
    result
      ? [fmt(result.rates[real].medianRps, 0), fmt(result.rates[`${real}Bare`].medianRps, 0), `${fmt(result.shareOfBare[real] * 100, 0)} %`]
      : ['—', '—', '—'];
  return [
    [`GET my_features (${FLAGS} flags)`, ...cell(results.sqlite, 'mine'), ...cell(results.postgres, 'mine')],
    ['GET {key}/check/', ...cell(results.sqlite, 'check'), ...cell(results.postgres, 'check')],
  ];
}

const COST_HEADER = ['evaluation cost per flag', 'SQLite', 'Postgres'];

function costRows(results: Results): string[][] {
  const ns = (result: DialectResult | null, pick: (cost: EvaluationCost) => number) => (result ? `${fmt(pick(result.evaluation), 0)} ns` : '—');
  return [
    ['rollout hash alone', ns(results.sqlite, (c) => c.rolloutHashNs), ns(results.postgres, (c) => c.rolloutHashNs)],
    ['my_features evaluation, cache warm', ns(results.sqlite, (c) => c.warmPerFlagNs), ns(results.postgres, (c) => c.warmPerFlagNs)],
    ['my_features evaluation, cache dropped each time', ns(results.sqlite, (c) => c.coldPerFlagNs), ns(results.postgres, (c) => c.coldPerFlagNs)],
  ];
}

function verdicts(results: Results): string[] {
  return (['sqlite', 'postgres'] as const).flatMap((dialect) => {
    const result = results[dialect];
    if (!result) return [];
    return (['mine', 'check'] as const).map((route) => {
      const share = result.shareOfBare[route];
      const errors = result.rates[route].non2xx + result.rates[route].errors;
      return `${dialect} ${route}: ${fmt(share * 100, 0)} % of bare express (target ≥ ${TARGET_SHARE * 100} %): ${share >= TARGET_SHARE ? 'met' : 'NOT met'}${errors ? `; ${errors} failed answers` : ''}`;
    });
  });
}

function report(results: Results): string {
  const { machine: m, config: c } = results;
  return [
    '# Punchclock feature-flag benchmark',
    '',
    `${results.date}, commit ${results.code.commit}${results.code.uncommitted.length ? ' (with uncommitted changes)' : ''}; ${m.cpus} × ${m.cpuModel}, ${m.totalMemGiB} GiB, Node ${m.node}, load ${m.loadAverageAtStart.join(' / ')} at start.`,
    `One regular user with ${c.flags} flags; autocannon, ${c.connections} connections, ${c.rounds} interleaved rounds of ${c.secondsPerRound} s per case (median round), after ${c.warmUpSeconds} s of warm-up each. ${c.server}.`,
    '',
    table(RATE_HEADER, rateRows(results)),
    '',
    table(COST_HEADER, costRows(results)),
    '',
    ...verdicts(results).map((line) => `- ${line}`),
    ...Object.entries(results.failures).map(([part, error]) => `- ${part} FAILED: ${error.split('\n')[0]}`),
    '',
    `Total ${results.totalSeconds} s.`,
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const started = now();
  const results: Results = {
    date: new Date().toISOString(),
    machine: machine(),
    code: codeUnderTest(),
    config: {
      flags: FLAGS,
      connections: CONNECTIONS,
      secondsPerRound: SECONDS,
      rounds: ROUNDS,
      warmUpSeconds: WARM_UP_SECONDS,
      server:
        'The real server is server/main.ts in its own process (in-memory bus, rate limits off, no access log); ' +
        'the baseline a bare express process answering the same bodies with res.json',
    },
    sqlite: null,
    postgres: null,
    failures: {},
    totalSeconds: 0,
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'punchclock-bench-flags-'));
  const removeDir = cleanups.add('temp SQLite files', () => rmSync(dir, { recursive: true, force: true }));
  results.sqlite = await attempt(results.failures, 'sqlite', () => runDialect('sqlite', `sqlite:${join(dir, 'flags.sqlite')}`));
  rmSync(dir, { recursive: true, force: true });
  removeDir();
  if (!SKIP_POSTGRES) results.postgres = await attempt(results.failures, 'postgres', runPostgres);
  results.totalSeconds = Math.round((now() - started) / 100) / 10;

  const markdown = report(results);
  process.stdout.write(`\n${markdown}\nResults: bench/results/${RESULTS_NAME}.json, bench/results/${RESULTS_NAME}.md\n`);
  writeResults(RESULTS_NAME, results, markdown);
  return Object.keys(results.failures).length === 0 ? 0 : 1;
}

await runBenchmark(main, cleanups, MAX_MS);

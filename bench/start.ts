// The start-up benchmark: `npm run bench:start` (issue 17).
//
// How long the server takes from spawn to its first answer, and how much memory it holds idle, run
// the two ways it can be run: `npm start` (server/main.ts under the tsx loader, which compiles the
// TypeScript as it loads) and production's `npm run start:prod` (the bundle `npm run build` makes,
// plain Node). Each is started ROUNDS times in turn, on an in-memory SQLite database (migrations
// included); the time is from spawn to the first answer of GET /health/live, the memory the resident set after
// IDLE_MS without requests. Builds the bundle first. Writes bench/results/start.{json,md}.
//
// Environment (all optional):
//   BENCH_ROUNDS   starts of each, default 7
//   BENCH_IDLE_MS  idle time before the memory is read, default 3000
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Cleanups, codeUnderTest, envInt, fmt, log, machine, median, now, runBenchmark, sleep, table, writeResults } from './support/measure';
import { answers, freePort } from './support/server-process';

const ROUNDS = envInt('BENCH_ROUNDS', 7);
const IDLE_MS = envInt('BENCH_IDLE_MS', 3000);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const WAYS = {
  'npm start (tsx server/main.ts)': ['--import', 'tsx', 'server/main.ts'],
  'npm run start:prod (node dist/main.js)': ['--enable-source-maps', 'dist/main.js'],
} as const;
type Way = keyof typeof WAYS;

const cleanups = new Cleanups();

interface Start {
  readyMs: number;
  idleRssMiB: number;
}

const residentMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function startOnce(way: Way): Promise<Start> {
  const port = await freePort();
  const started = now();
  const child = spawn(process.execPath, [...WAYS[way]], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), DATABASE_URL: ':memory:', LOG_LEVEL: 'warn', REDIS_URL: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = cleanups.add(`${way} server`, async () => {
    child.kill('SIGKILL');
    await exited;
  });
  try {
    // /health/live answers 200 whenever the process answers HTTP.
    while (!(await answers(`http://127.0.0.1:${port}/health/live`))) {
      if (child.exitCode !== null) throw new Error(`${way} exited with ${child.exitCode}`);
      await sleep(5);
    }
    const readyMs = now() - started;
    await sleep(IDLE_MS);
    return { readyMs, idleRssMiB: residentMiB(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await exited;
    stop();
  }
}

async function main(): Promise<number> {
  const startedAt = now();
  log('building the bundle (npm run build)');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
  const ways = Object.keys(WAYS) as Way[];
  const starts = new Map<Way, Start[]>(ways.map((way) => [way, []]));
  // One untimed start each: the first start after a build reads cold files.
  for (const way of ways) await startOnce(way);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const way of ways) {
      const start = await startOnce(way);
      starts.get(way)!.push(start);
      log(`round ${round}/${ROUNDS} ${way}: ready in ${fmt(start.readyMs, 0)} ms, ${fmt(start.idleRssMiB)} MiB idle`);
    }
  }
  const figures = ways.map((way) => {
    const runs = starts.get(way)!;
    return { way, readyMs: median(runs.map((run) => run.readyMs)), idleRssMiB: median(runs.map((run) => run.idleRssMiB)), runs };
  });
  const [dev, prod] = figures;
  const results = { date: new Date().toISOString(), code: codeUnderTest(), machine: machine(), rounds: ROUNDS, idleMs: IDLE_MS, figures, totalSeconds: (now() - startedAt) / 1000 };
  const m = results.machine;
  const markdown = [
    '# Punchclock start-up benchmark',
    '',
    `${results.date}, commit ${results.code.commit}${results.code.uncommitted.length ? ' (with uncommitted changes)' : ''}; ${m.cpus} × ${m.cpuModel}, ${m.totalMemGiB} GiB, Node ${m.node}, load ${m.loadAverageAtStart.join(' / ')} at start.`,
    `Each way started ${ROUNDS} times in turn (after one untimed start each) on in-memory SQLite, migrations included; ready = spawn to the first answer of GET /health/live (always 200); idle memory = resident set after ${IDLE_MS / 1000} s without requests. Median of the starts.`,
    '',
    table(
      ['way', 'ready (median)', 'idle RSS (median)'],
      figures.map((figure) => [figure.way, `${fmt(figure.readyMs, 0)} ms`, `${fmt(figure.idleRssMiB)} MiB`]),
    ),
    '',
    `The bundle is ready in ${fmt((prod.readyMs / dev.readyMs) * 100, 0)} % of the time tsx takes, holding ${fmt((prod.idleRssMiB / dev.idleRssMiB) * 100, 0)} % of its memory.`,
    '',
    `Total ${fmt(results.totalSeconds)} s.`,
    '',
  ].join('\n');
  writeResults('start', results, markdown);
  console.log(`\n${markdown}`);
  return 0;
}

await runBenchmark(main, cleanups, 10 * 60_000);

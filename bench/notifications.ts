// The notifications benchmark: `npm run bench:notifications`.
//
// One server process (bench/support/bench-server.ts, bundled as production runs the API, see
// bench/support/compiled-entry.ts; its own process so that the clients' memory is not in its RSS) and, in this process, thousands of long-poll clients. Measures
// what waiting costs (database queries per second and resident memory per waiting client), how long
// a notification takes from create to the waiting client, and how long a broadcast takes to reach
// everyone — and the same idle figures for a naive long-poll that re-queries the database every
// second, mounted in the same server in "naive" mode. Beside ours, the floor: the same routes on bare
// node:http with everything in memory (bench/support/floor-server.ts), run through the same
// measurements, so that each figure of ours reads against what the hardware allows in this very run.
// Writes bench/results/notifications.{json,md}.
//
// Environment (all optional):
//   BENCH_CLIENTS        the two idle loads, default "1000,10000"
//   BENCH_SAMPLES        create→receive samples per backend, default 200
//   BENCH_NAIVE_SAMPLES  create→receive samples for the naive long-poll, default 20
//   BENCH_CAPACITY       waiting long-polls of the capacity run (after the large load), default 50000;
//                        0 leaves it out. The run raises the open-file limit it needs (ensureFileLimit)
//   BENCH_STREAMS        Server-Sent Events streams of the streams run (memory, a broadcast), default 10000; 0 leaves it out
//   BENCH_BURST          users of the burst (each waiting, all creating at once), default 200
//   BENCH_BURST_ROUNDS   timed bursts per backend (after one untimed), default 5
//   BENCH_BROADCAST_ROUNDS  broadcasts to the large load per backend (the median is reported), default 3
//   BENCH_WINDOW_S       length of each idle measurement window in seconds, default 5
//   BENCH_POSTGRES_URL   server to create the throw-away database on, default postgres://postgres@127.0.0.1:5432/test
//   REDIS_URL            default redis://127.0.0.1:6379
//   BENCH_SKIP_POSTGRES  "1" to leave out the Postgres + Redis run
//   BENCH_RUNS           which runs, of "floor,sqlite,naive,postgres" (all by default)
//   BENCH_SERVER_NODE_OPTIONS  node flags for the server process only (e.g. "--optimize-for-size")
//   BENCH_RESULTS_NAME   file name of the results under bench/results/, default "notifications"
//   BENCH_PROFILE_DIR    write a CPU profile and a sampling heap profile of the server for each broadcast there
//                        (<server>-<recipients>-<n>.cpuprofile and .heapprofile, from the admin's create until
//                        every client waits again; open them in Chrome DevTools)
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchProcess } from './support/bench-process';
import { raiseFileLimit } from './support/file-limit';
import { LongPollClients } from './support/long-poll-clients';
import { SseClients } from './support/sse-clients';
import { codeUnderTest, envInt, resultsName, log, now, percentile, sleep, summarize, withDeadline, type CodeUnderTest, type LatencySummary } from './support/measure';
import { createThrowawayDatabase } from './support/throwaway-database';
import type { BenchMode, ReadyMessage, ServerStats } from './support/protocol';

// ---------------------------------------------------------------------------------------------
// Configuration

const [SMALL_LOAD, LARGE_LOAD] = (process.env.BENCH_CLIENTS ?? '1000,10000').split(',').map((n) => Number.parseInt(n, 10));
const SAMPLES = Number.parseInt(process.env.BENCH_SAMPLES ?? '200', 10);
const NAIVE_SAMPLES = Number.parseInt(process.env.BENCH_NAIVE_SAMPLES ?? '20', 10);
const CAPACITY_WANTED = Number.parseInt(process.env.BENCH_CAPACITY ?? '50000', 10) || 0;
const STREAMS = Number.parseInt(process.env.BENCH_STREAMS ?? '10000', 10) || 0;
const BURST = envInt('BENCH_BURST', 200);
const BURST_ROUNDS = envInt('BENCH_BURST_ROUNDS', 5);
const BROADCAST_ROUNDS = envInt('BENCH_BROADCAST_ROUNDS', 3);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? '5');
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SKIP_POSTGRES = process.env.BENCH_SKIP_POSTGRES === '1';
const RUNS = new Set((process.env.BENCH_RUNS || 'floor,sqlite,naive,postgres').split(',').map((run) => run.trim()));
const LONG_POLL_TIMEOUT_S = 60;
const BATCH = 500;
const WARM_UP_POLLS = 500;
const LATENCY_WARM_UP = 50;
/** The whole run is killed after this, whatever it is doing. */
const WATCHDOG_MS = Number(process.env.BENCH_MAX_MINUTES ?? '15') * 60_000;

if (!(SMALL_LOAD > 0 && LARGE_LOAD >= SMALL_LOAD)) throw new Error('BENCH_CLIENTS must be "small,large" with 0 < small <= large');
if (CAPACITY_WANTED !== 0 && CAPACITY_WANTED <= LARGE_LOAD) throw new Error('BENCH_CAPACITY must be above the large load (or 0)');
/** Descriptors beyond the clients' sockets: the server's database and Redis connections, files, the create requests. */
const SPARE_FILES = 1_000;
const FILE_LIMIT = raiseFileLimit(Math.max(LARGE_LOAD, CAPACITY_WANTED) + SPARE_FILES);
/**
 * The waiting long-polls of the capacity run: as many as wanted, or as the open-file limit allows.
 * (One process holds them all on each side: on a machine whose hard limit cannot be raised, e.g.
 * 20,000 in a container without CAP_SYS_RESOURCE, that is the ceiling; the results say so.)
 */
const CAPACITY_ALLOWED = Math.min(CAPACITY_WANTED, FILE_LIMIT - SPARE_FILES);
const CAPACITY = CAPACITY_WANTED > 0 && CAPACITY_ALLOWED > LARGE_LOAD ? CAPACITY_ALLOWED : 0;
const CAPACITY_NOTE =
  CAPACITY_WANTED > 0 && CAPACITY < CAPACITY_WANTED
    ? `capacity run ${CAPACITY ? `at ${CAPACITY} waiting` : 'left out'} instead of ${CAPACITY_WANTED} waiting: ` +
      `the open-file limit is ${FILE_LIMIT} and could not be raised (prlimit needs CAP_SYS_RESOURCE to raise the hard limit)`
    : null;
if (STREAMS > LARGE_LOAD) throw new Error('BENCH_STREAMS must not exceed the large load (its users open the streams)');
if (BURST > SMALL_LOAD) throw new Error("BENCH_BURST must not exceed the small load: the burst's users are waiting ones");

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const RESULTS_NAME = resultsName('notifications');
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR || undefined;
let profilesTaken = 0;
const SERVER_NODE_OPTIONS = process.env.BENCH_SERVER_NODE_OPTIONS?.trim() || 'none';

// ---------------------------------------------------------------------------------------------
// Small helpers

const runId = randomBytes(4).toString('hex');

/** Polls `condition` every 50 ms until it holds; rejects after `ms`. */
async function until(what: string, ms: number, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}


function postJson(
  agent: http.Agent,
  port: number,
  path: string,
  token: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        timeout: 60_000,
        headers: { Authorization: `Token ${token}`, 'Content-Type': 'application/json', 'Content-Length': payload.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`POST ${path} timed out`)));
    request.on('error', reject);
    request.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// Cleanup: every process, socket, database and file this run opens is registered here.

const cleanups: Array<{ name: string; run: () => Promise<void> | void }> = [];
let cleanedUp = false;

function onCleanup(name: string, run: () => Promise<void> | void): () => void {
  const entry = { name, run };
  cleanups.push(entry);
  return () => {
    const index = cleanups.indexOf(entry);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

async function cleanUp(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const { name, run } of cleanups.reverse()) {
    try {
      await Promise.race([Promise.resolve(run()), sleep(20_000).then(() => Promise.reject(new Error('timed out')))]);
    } catch (error) {
      log(`cleanup "${name}" failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  cleanups.length = 0;
}

const serversStarted: Record<string, ReadyMessage> = {};

/** Runs `work` with the server, then stops it (and, should that fail, kills it). */
async function withServer<T>(
  label: string,
  options: { mode: BenchMode; databaseUrl: string; redisUrl?: string },
  work: (server: BenchProcess) => Promise<T>,
): Promise<T> {
  const server = await BenchProcess.start(label, options);
  const forget = onCleanup(`server ${label}`, () => server.stop(5000));
  serversStarted[label] = server.ready;
  log(`${label}: server pid ${server.pid} on 127.0.0.1:${server.port} (${server.ready.dialect}, ${server.ready.bus} bus, ${server.ready.mode})`);
  try {
    return await work(server);
  } finally {
    await server.stop().catch(() => server.kill());
    forget();
  }
}

/** Runs `work` with a set of long-poll clients, closing all their sockets afterwards. */
async function withClients<T>(
  port: number,
  tokens: readonly string[],
  work: (clients: LongPollClients) => Promise<T>,
): Promise<T> {
  const clients = new LongPollClients(port, tokens, LONG_POLL_TIMEOUT_S);
  const forget = onCleanup('long-poll clients', () => clients.close());
  try {
    return await work(clients);
  } finally {
    clients.close();
    forget();
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

type WaitingCount = (stats: ServerStats) => number;
const waitingIn = (mode: BenchMode): WaitingCount =>
  mode === 'real' ? (stats) => stats.hub.subscribers : (stats) => stats.naiveWaiting;

/** One answered long-poll per user for a few hundred users (timeout=1), so that code paths are warm. */
async function warmUp(server: BenchProcess, tokens: readonly string[]): Promise<void> {
  const count = Math.min(WARM_UP_POLLS, tokens.length);
  const clients = new LongPollClients(server.port, tokens, 1, true);
  try {
    clients.start(0, count);
    await until('warm-up polls', 30_000, () => clients.counters.responses + clients.counters.errors >= count);
  } finally {
    clients.close();
  }
  await sleep(300);
}

interface RampResult {
  clients: number;
  ms: number;
  /** Queries per connecting client while it connected (authentication + the first read for ours). */
  queriesPerConnect: number;
  /** Clients started in all, this ramp's and earlier ones. */
  started: number;
  /** Set when a batch did not get to waiting in time and the ramp stopped there (naive only). */
  stalledAt?: number;
}

/**
 * Starts clients `clients.size`…`target-1` in batches, each batch once the previous one waits.
 * With `stopWhenStalled` a batch that does not get to waiting within the deadline ends the ramp
 * (the server is saturated) instead of failing it.
 */
async function ramp(
  server: BenchProcess,
  clients: LongPollClients,
  target: number,
  waiting: WaitingCount,
  stopWhenStalled = false,
): Promise<RampResult> {
  const started = now();
  const first = clients.size;
  const before = await server.stats();
  let stalledAt: number | undefined;
  for (let from = first; from < target; from += BATCH) {
    const to = Math.min(target, from + BATCH);
    clients.start(from, to);
    try {
      await until(`${to} waiting clients`, stopWhenStalled ? 30_000 : 60_000, async () => waiting(await server.stats()) >= to);
    } catch (error) {
      if (!stopWhenStalled) throw error;
      stalledAt = waiting(await server.stats());
      log(`ramp stalled: fewer than ${to} clients waiting for 30 s (${stalledAt} now); stopping the ramp at ${clients.size} started`);
      break;
    }
  }
  const after = await server.stats();
  return {
    clients: clients.size - first,
    started: clients.size,
    ms: Math.round(now() - started),
    queriesPerConnect: Math.round(((after.queries - before.queries) / Math.max(1, clients.size - first)) * 100) / 100,
    ...(stalledAt !== undefined ? { stalledAt } : {}),
  };
}

interface IdleWindow {
  waitingClients: number;
  seconds: number;
  queries: number;
  queriesPerSecond: number;
  serverCpuPercent: number;
  loopDelayP99Ms: number;
  /** Long-poll answers the clients got during the window (0 when nothing was sent: all still waiting). */
  answersDuringWindow: number;
  errorsDuringWindow: number;
}

async function idleWindow(server: BenchProcess, clients: LongPollClients, waiting: WaitingCount): Promise<IdleWindow> {
  const answers = clients.counters.responses;
  const errors = clients.counters.errors;
  const before = await server.stats({ resetLoopDelay: true });
  const started = now();
  await sleep(WINDOW_S * 1000);
  const after = await server.stats();
  const seconds = (now() - started) / 1000;
  const queries = after.queries - before.queries;
  const cpuSeconds = (after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs) / 1e6;
  return {
    waitingClients: waiting(after),
    seconds: Math.round(seconds * 100) / 100,
    queries,
    queriesPerSecond: Math.round((queries / seconds) * 10) / 10,
    serverCpuPercent: Math.round((cpuSeconds / seconds) * 1000) / 10,
    loopDelayP99Ms: Math.round(after.loopDelayP99Ms * 10) / 10,
    answersDuringWindow: clients.counters.responses - answers,
    errorsDuringWindow: clients.counters.errors - errors,
  };
}

interface MemoryFigure {
  waitingClients: number;
  baselineRssMB: number;
  rssMB: number;
  rssPerClientKB: number;
  /** V8 heap in use (after a full GC) per waiting client. */
  heapPerClientKB: number;
  /** V8 heap reserved per waiting client: RSS − heapTotal is native memory (sockets, parsers, buffers). */
  heapTotalPerClientKB: number;
}

const MB = 1024 * 1024;
function memoryFigure(baseline: ServerStats, loaded: ServerStats, waiting: number): MemoryFigure {
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    waitingClients: waiting,
    baselineRssMB: round(baseline.rss / MB),
    rssMB: round(loaded.rss / MB),
    rssPerClientKB: round((loaded.rss - baseline.rss) / waiting / 1024),
    heapPerClientKB: round((loaded.heapUsed - baseline.heapUsed) / waiting / 1024),
    heapTotalPerClientKB: round((loaded.heapTotal - baseline.heapTotal) / waiting / 1024),
  };
}

interface IdleLoad {
  ramp: RampResult;
  memory: MemoryFigure;
  idle: IdleWindow;
  /** Naive only: the server could not keep up with this load (see `saturationReason`). */
  saturated?: boolean;
  saturationReason?: string;
}

/** Ramps to `target` waiting clients, lets them settle, then reads memory and an idle window. */
async function idleLoad(
  server: BenchProcess,
  clients: LongPollClients,
  target: number,
  mode: BenchMode,
  baseline: ServerStats,
): Promise<IdleLoad> {
  const waiting = waitingIn(mode);
  const rampResult = await ramp(server, clients, target, waiting, mode === 'naive');
  await sleep(mode === 'naive' ? 2000 : 1000);
  const loaded = await server.stats({ gc: true });
  const memory = memoryFigure(baseline, loaded, waiting(loaded));
  const idle = await idleWindow(server, clients, waiting);
  return { ramp: rampResult, memory, idle };
}

/**
 * Sequential create→receive samples: POST /api/notifications/test/ with a waiting user's token
 * (over its own keep-alive connection), timed from just before the request until that user's
 * long-poll answer carrying the notification has been read in full.
 */
async function latency(
  port: number,
  clients: LongPollClients,
  tokens: readonly string[],
  waitingClients: number,
  samples: number,
  warmUpSamples: number,
  perSampleTimeoutMs = 15_000,
): Promise<LatencySummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, noDelay: true });
  const values: number[] = [];
  try {
    for (let i = 0; i < warmUpSamples + samples; i++) {
      // A different waiting user each time (7919 is prime, so coprime with the client count).
      const client = (i * 7919) % waitingClients;
      const message = `latency ${runId} ${i}`;
      const received = clients.waitFor(
        client,
        (body) => body.notifications.some((n) => n.message === message),
        perSampleTimeoutMs,
      );
      const started = now();
      const created = postJson(agent, port, '/api/notifications/test/', tokens[client], { type: 'INFO', message });
      const [at, answer] = await Promise.all([received, created]);
      if (answer.status !== 201) throw new Error(`POST /api/notifications/test/ answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      if (i >= warmUpSamples) values.push(at - started);
    }
  } finally {
    agent.destroy();
  }
  return summarize(values);
}

/**
 * The burst: `BURST` waiting users each create a notification for themselves at the same moment
 * (every POST sent before any answer is read, each over its own keep-alive connection), each timed
 * from the moment the burst starts until that user's long-poll answer carrying it has been read. One
 * untimed round first, so that the create connections are open and warm; each round takes the next
 * `BURST` waiting users.
 */
async function burst(port: number, clients: LongPollClients, tokens: readonly string[], waitingClients: number): Promise<LatencySummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, noDelay: true });
  const values: number[] = [];
  try {
    for (let round = 0; round <= BURST_ROUNDS; round++) {
      const users = Array.from({ length: BURST }, (_, i) => (round * BURST + i) % waitingClients);
      const message = `burst ${runId} ${round}`;
      const received = users.map((client) =>
        clients.waitFor(client, (body) => body.notifications.some((n) => n.message === message), 30_000),
      );
      const started = now();
      const created = users.map((client) => postJson(agent, port, '/api/notifications/test/', tokens[client], { type: 'INFO', message }));
      const [arrivals, answers] = await Promise.all([Promise.all(received), Promise.all(created)]);
      const refused = answers.find((answer) => answer.status !== 201);
      if (refused) throw new Error(`burst: POST /api/notifications/test/ answered ${refused.status}: ${JSON.stringify(refused.body)}`);
      if (round > 0) values.push(...arrivals.map((at) => at - started));
    }
  } finally {
    agent.destroy();
  }
  return summarize(values);
}

interface BroadcastResult {
  recipients: number;
  waitingClients: number;
  created: number;
  /** From just before the admin create until its 201 answer. */
  createAnsweredMs: number;
  firstReceivedMs: number;
  medianReceivedMs: number;
  /** From just before the admin create until the last waiting client had read its answer. */
  allReceivedMs: number;
  /** Queries from the create until every client was waiting again (create, reads, delivered marks, re-polls). */
  queries: number;
  /** The server's longest event-loop stall from the create until every client was waiting again. */
  loopDelayMaxMs: number;
  /**
   * CPU time per recipient from the create until every client was waiting again, in microseconds:
   * the server's (its whole work for one delivery: read, answer, delivered mark, the re-poll), and
   * this process's (the clients reading the answer and polling again). Steadier than the wall time
   * on a shared machine, and it tells whether the server or the clients set the pace.
   */
  serverCpuUsPerRecipient: number;
  clientsCpuUsPerRecipient: number;
  /** Of the server's CPU per recipient, its garbage collector's pauses (what the heap a poll holds costs). */
  serverGcUsPerRecipient: number;
  /**
   * The server's main thread: its busy time per recipient, and the share of the broadcast it was busy
   * (event-loop utilization). Near 100 %, the main thread sets the pace; the CPU figure above also
   * counts the collector's and libuv's other threads.
   */
  serverMainThreadUsPerRecipient: number;
  serverBusyPercent: number;
  /** When it is the median of several broadcasts: each one's allReceivedMs, in the order they ran. */
  roundsMs?: number[];
}

/** How a broadcast's arrivals are seen: long-poll answers, or stream events. */
interface Receivers {
  /** Calls `arrived` with each client's first message of this text; returns the function that stops. */
  watch(message: string, arrived: (client: number, at: number) => void): () => void;
  /** Whether, after the broadcast, every client is waiting again (long-polls re-poll; streams stay). */
  settled(stats: ServerStats): boolean;
}

const longPollReceivers = (clients: LongPollClients, waitingClients: number): Receivers => ({
  watch: (message, arrived) =>
    clients.onResponse((client, body, at) => body.notifications.some((n) => n.message === message) && arrived(client, at)),
  settled: (stats) => stats.hub.subscribers >= waitingClients,
});

const streamReceivers = (clients: SseClients): Receivers => ({
  watch: (message, arrived) => clients.onEvent((client, event, at) => event.message === message && arrived(client, at)),
  settled: () => true,
});

async function broadcast(
  server: BenchProcess,
  receivers: Receivers,
  adminToken: string,
  waitingClients: number,
): Promise<BroadcastResult> {
  const message = `broadcast ${runId} ${waitingClients}`;
  const arrivals = new Map<number, number>();
  let allArrived!: () => void;
  const everyone = new Promise<void>((resolve) => (allArrived = resolve));
  const off = receivers.watch(message, (client, at) => {
    if (arrivals.has(client)) return;
    arrivals.set(client, at);
    if (arrivals.size >= waitingClients) allArrived();
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, noDelay: true });
  try {
    if (PROFILE_DIR) await server.startProfile();
    const before = await server.stats({ resetLoopDelay: true });
    const clientsCpuBefore = process.cpuUsage();
    const started = now();
    const answer = await postJson(agent, server.port, '/api/notifications/', adminToken, { all: true, type: 'INFO', message });
    const createAnsweredMs = now() - started;
    if (answer.status !== 201) throw new Error(`admin create answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      everyone,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`broadcast: only ${arrivals.size} of ${waitingClients} clients received it within 120 s`)),
          120_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const times = [...arrivals.values()].map((at) => at - started).sort((a, b) => a - b);
    await until('every client waiting again', 60_000, async () => receivers.settled(await server.stats()));
    const after = await server.stats();
    if (PROFILE_DIR) await server.stopProfile(join(PROFILE_DIR, `${server.label.replace(/\W+/g, '-')}-${waitingClients}-${++profilesTaken}.cpuprofile`));
    const clientsCpu = process.cpuUsage(clientsCpuBefore);
    const round = (n: number) => Math.round(n * 10) / 10;
    const perRecipient = (cpuUs: number) => round(cpuUs / arrivals.size);
    const loopActiveMs = after.loopActiveMs - before.loopActiveMs;
    const loopIdleMs = after.loopIdleMs - before.loopIdleMs;
    return {
      recipients: arrivals.size,
      waitingClients,
      created: (answer.body as { created: number }).created,
      createAnsweredMs: round(createAnsweredMs),
      firstReceivedMs: round(times[0]),
      medianReceivedMs: round(percentile(times, 50)),
      allReceivedMs: round(times.at(-1)!),
      queries: after.queries - before.queries,
      loopDelayMaxMs: Math.round(after.loopDelayMaxMs),
      serverCpuUsPerRecipient: perRecipient(after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs),
      clientsCpuUsPerRecipient: perRecipient(clientsCpu.user + clientsCpu.system),
      serverGcUsPerRecipient: perRecipient((after.gcPauseMs - before.gcPauseMs) * 1000),
      serverMainThreadUsPerRecipient: perRecipient(loopActiveMs * 1000),
      serverBusyPercent: Math.round((100 * loopActiveMs) / (loopActiveMs + loopIdleMs)),
    };
  } finally {
    off();
    agent.destroy();
  }
}

/**
 * The median of `rounds` broadcasts, one after the other, by the time until the last client had it
 * (this machine is shared: one broadcast's figure drifts by a third between runs).
 */
async function medianOf(rounds: number, run: () => Promise<BroadcastResult>): Promise<BroadcastResult> {
  const results: BroadcastResult[] = [];
  for (let round = 0; round < rounds; round++) results.push(await run());
  const sorted = [...results].sort((a, b) => a.allReceivedMs - b.allReceivedMs);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return rounds > 1 ? { ...median, roundsMs: results.map((result) => result.allReceivedMs) } : median;
}

// ---------------------------------------------------------------------------------------------
// Runs

interface RealRun {
  seedMs: number;
  baselineRssMB: number;
  small: IdleLoad;
  latency: LatencySummary;
  burst: LatencySummary;
  large: IdleLoad;
  broadcast: BroadcastResult;
  /** The capacity run (BENCH_CAPACITY waiting), when there is one. */
  capacity: { load: IdleLoad; broadcast: BroadcastResult } | null;
  clientCounters: LongPollClients['counters'];
  /** The streams run (BENCH_STREAMS open streams), when there is one. */
  streams: { memory: MemoryFigure; broadcast: BroadcastResult; counters: SseClients['counters'] } | null;
}

interface NaiveRun {
  seedMs: number;
  baselineRssMB: number;
  small: IdleLoad;
  latency: LatencySummary;
  large: IdleLoad | null;
  largeSkippedBecause?: string;
  clientCounters: LongPollClients['counters'];
}

type PostgresRun = RealRun & { database: string };

function sqliteUrl(dir: string, name: string): string {
  return `sqlite:${join(dir, `${name}.sqlite`)}`;
}

/**
 * Our long-poll on one backend (or the floor): idle at the small load, create→receive samples and
 * bursts there, idle at the large load, then one broadcast to everyone waiting.
 */
async function runReal(label: string, databaseUrl: string, redisUrl?: string, mode: 'real' | 'floor' = 'real'): Promise<RealRun> {
  return withServer(label, { mode, databaseUrl, redisUrl }, async (server) => {
    const seeded = await withDeadline(`${label}: seed ${LARGE_LOAD} users`, 120_000, () => server.seed(LARGE_LOAD, true));
    await withDeadline(`${label}: warm-up`, 60_000, () => warmUp(server, seeded.tokens));
    const baseline = await server.stats({ gc: true });
    if (!baseline.busHealthy) throw new Error(`${label}: the bus is not healthy (is Redis up at ${redisUrl}?)`);
    const longPolls = await withClients(server.port, seeded.tokens, async (clients) => {
      const small = await withDeadline(`${label}: ${SMALL_LOAD} waiting clients`, 120_000, () =>
        idleLoad(server, clients, SMALL_LOAD, 'real', baseline),
      );
      const latencyResult = await withDeadline(`${label}: ${SAMPLES} create→receive samples`, 180_000, () =>
        latency(server.port, clients, seeded.tokens, SMALL_LOAD, SAMPLES, LATENCY_WARM_UP),
      );
      const burstResult = await withDeadline(`${label}: ${BURST_ROUNDS} bursts of ${BURST} creates`, 180_000, () =>
        burst(server.port, clients, seeded.tokens, SMALL_LOAD),
      );
      const large = await withDeadline(`${label}: ${LARGE_LOAD} waiting clients`, 240_000, () =>
        idleLoad(server, clients, LARGE_LOAD, 'real', baseline),
      );
      const broadcastResult = await withDeadline(`${label}: ${BROADCAST_ROUNDS} broadcasts to ${LARGE_LOAD}`, 180_000 * BROADCAST_ROUNDS, () =>
        medianOf(BROADCAST_ROUNDS, () => broadcast(server, longPollReceivers(clients, LARGE_LOAD), seeded.adminToken!, LARGE_LOAD)),
      );
      const capacity = CAPACITY ? await capacityRun(label, server, clients, seeded.tokens, seeded.adminToken!, baseline) : null;
      return {
        seedMs: Math.round(seeded.ms),
        baselineRssMB: Math.round((baseline.rss / MB) * 100) / 100,
        small,
        latency: latencyResult,
        burst: burstResult,
        large,
        broadcast: broadcastResult,
        capacity,
        clientCounters: clients.counters,
      };
    });
    const streams = STREAMS
      ? await withDeadline(`${label}: ${STREAMS} streams`, 600_000, () => streamsRun(server, seeded.tokens, seeded.adminToken!))
      : null;
    return { ...longPolls, streams };
  });
}

/** Server-Sent Events: BENCH_STREAMS streams open (memory), then a broadcast to them. */
async function streamsRun(server: BenchProcess, tokens: readonly string[], adminToken: string): Promise<RealRun['streams']> {
  await until('the long-polls to have closed', 60_000, async () => (await server.stats()).hub.connections === 0);
  const baseline = await server.stats({ gc: true });
  const clients = new SseClients(server.port, tokens);
  const forget = onCleanup('streams', () => clients.close());
  try {
    for (let from = 0; from < STREAMS; from += BATCH) {
      const to = Math.min(STREAMS, from + BATCH);
      clients.start(from, to);
      await until(`${to} open streams`, 60_000, async () => (await server.stats()).hub.connections >= to);
    }
    await sleep(1000);
    const loaded = await server.stats({ gc: true });
    const memory = memoryFigure(baseline, loaded, loaded.hub.connections);
    const everyone = await broadcast(server, streamReceivers(clients), adminToken, STREAMS);
    return { memory, broadcast: everyone, counters: clients.counters };
  } finally {
    clients.close();
    forget();
  }
}

/** As many waiting long-polls as one instance should hold (BENCH_CAPACITY): memory, then a broadcast to all. */
async function capacityRun(
  label: string,
  server: BenchProcess,
  clients: LongPollClients,
  tokens: string[],
  adminToken: string,
  baseline: ServerStats,
): Promise<RealRun['capacity']> {
  const more = await withDeadline(`${label}: seed ${CAPACITY - LARGE_LOAD} more users`, 300_000, () => server.seed(CAPACITY - LARGE_LOAD, false));
  // The clients read their tokens from this array: the new users' clients start with the ramp.
  tokens.push(...more.tokens);
  const load = await withDeadline(`${label}: ${CAPACITY} waiting clients`, 600_000, () => idleLoad(server, clients, CAPACITY, 'real', baseline));
  const everyone = await withDeadline(`${label}: broadcast to ${CAPACITY}`, 300_000, () =>
    broadcast(server, longPollReceivers(clients, CAPACITY), adminToken, CAPACITY),
  );
  return { load, broadcast: everyone };
}

/** The naive server could not keep up: its re-queries fall behind, or its event loop stalls. */
function saturation(load: IdleLoad): string | undefined {
  const expected = load.idle.waitingClients; // one query per waiting client per second
  const reasons: string[] = [];
  if (load.ramp.stalledAt !== undefined) {
    reasons.push(`the ramp stalled (${load.ramp.stalledAt} waiting of ${load.ramp.started} started, 30 s after the last batch)`);
  }
  if (load.idle.queriesPerSecond < 0.9 * expected) {
    reasons.push(`${load.idle.queriesPerSecond} queries/s where ${expected} waiting clients should cause ${expected}`);
  }
  if (load.idle.loopDelayP99Ms > 250) reasons.push(`event-loop delay p99 ${load.idle.loopDelayP99Ms} ms`);
  if (load.idle.serverCpuPercent > 90) reasons.push(`server CPU ${load.idle.serverCpuPercent}% of one core`);
  return reasons.length ? reasons.join('; ') : undefined;
}

async function runSqliteNaive(dir: string): Promise<NaiveRun> {
  return withServer('naive/sqlite', { mode: 'naive', databaseUrl: sqliteUrl(dir, 'naive') }, async (server) => {
    const seeded = await withDeadline(`seed ${LARGE_LOAD} users`, 120_000, () => server.seed(LARGE_LOAD, false));
    await withDeadline('warm-up', 60_000, () => warmUp(server, seeded.tokens));
    const baseline = await server.stats({ gc: true });
    return withClients(server.port, seeded.tokens, async (clients) => {
      const small = await withDeadline(`naive: ${SMALL_LOAD} waiting clients`, 120_000, () =>
        idleLoad(server, clients, SMALL_LOAD, 'naive', baseline),
      );
      const smallSaturation = saturation(small);
      if (smallSaturation) Object.assign(small, { saturated: true, saturationReason: smallSaturation });
      const latencyResult = await withDeadline(`naive/sqlite: ${NAIVE_SAMPLES} create→receive samples`, 120_000, () =>
        latency(server.port, clients, seeded.tokens, SMALL_LOAD, NAIVE_SAMPLES, 2),
      );
      let large: IdleLoad | null = null;
      let largeSkippedBecause: string | undefined;
      if (smallSaturation) {
        largeSkippedBecause = `already saturated at ${SMALL_LOAD}: ${smallSaturation}`;
      } else {
        try {
          large = await withDeadline(`naive: ${LARGE_LOAD} waiting clients`, 240_000, () =>
            idleLoad(server, clients, LARGE_LOAD, 'naive', baseline),
          );
          const reason = saturation(large);
          if (reason) Object.assign(large, { saturated: true, saturationReason: reason });
        } catch (error) {
          largeSkippedBecause = `could not reach ${LARGE_LOAD} waiting naive clients: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
      return {
        seedMs: Math.round(seeded.ms),
        baselineRssMB: Math.round((baseline.rss / MB) * 100) / 100,
        small,
        latency: latencyResult,
        large,
        largeSkippedBecause,
        clientCounters: clients.counters,
      };
    });
  });
}

async function runPostgres(): Promise<PostgresRun> {
  const database = await createThrowawayDatabase(POSTGRES_URL, 'bench');
  const forget = onCleanup(`drop database ${database.name}`, database.drop);
  try {
    return { database: database.name, ...(await runReal('real/postgres+redis', database.url, REDIS_URL)) };
  } finally {
    await database.drop();
    forget();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

const fmt = (n: number, digits = 1) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
const count = (n: number) => n.toLocaleString('en-US');

/** `figure ÷ base` (the naive's ÷ ours, ours ÷ the floor's). */
function ratio(figure: number | undefined, base: number | undefined): string {
  if (figure === undefined || base === undefined || !Number.isFinite(figure) || !Number.isFinite(base)) return '—';
  if (base <= 0) return figure > 0 ? '∞ (ours is 0)' : '—';
  return `${fmt(figure / base, 1)}×`;
}

interface Row {
  figure: string;
  sqlite: string;
  postgres: string;
  floor: string;
  overFloor: string;
  naive: string;
  ratio: string;
  target: string;
}

const TABLE_HEADER = [
  'Figure',
  'Ours, SQLite',
  'Ours, Postgres + Redis',
  'Floor (in-memory node:http)',
  'Ours ÷ floor (SQLite / Postgres)',
  'Naive (1 s re-query), SQLite',
  'Naive ÷ ours (SQLite)',
  'Target',
];
const tableCells = (row: Row) => [row.figure, row.sqlite, row.postgres, row.floor, row.overFloor, row.naive, row.ratio, row.target];

function rows(results: Results): Row[] {
  const { real, naive, postgres, floor } = results;
  const saturated = (load: IdleLoad | null | undefined) => (load?.saturated ? ` (saturated at ${count(load.idle.waitingClients)} waiting)` : '');
  const queries = (load: IdleLoad | null | undefined) => (load ? fmt(load.idle.queriesPerSecond) : '—');
  const memory = (load: IdleLoad | null | undefined) => (load ? `${fmt(load.memory.rssPerClientKB, 1)} KB` : '—');
  const latencyCell = (l: LatencySummary | undefined, digits: number) =>
    l ? `${fmt(l.p50Ms, digits)} / ${fmt(l.p99Ms, digits)} ms (n=${l.samples})` : '—';
  const broadcastCell = (b: BroadcastResult | undefined) =>
    b ? `${fmt(b.allReceivedMs / 1000, 2)} s (median ${fmt(b.medianReceivedMs / 1000, 2)} s)` : '—';
  /** Ours on SQLite and on Postgres, each divided by the floor's figure of the same run. */
  const overFloor = (figure: (run: RealRun) => number | undefined, what = '') => {
    const base = floor ? figure(floor) : undefined;
    if (base === undefined) return '—';
    const one = (run: RealRun | null) => (run ? ratio(figure(run), base) : '—');
    return `${one(real)} / ${one(postgres)}${what}`;
  };
  /** A broadcast's row: ours and the floor's time until the last client had it, and their ratio. */
  const broadcastRow = (figure: string, of: (run: RealRun) => BroadcastResult | undefined, target: string): Row => ({
    figure,
    sqlite: broadcastCell(real ? of(real) : undefined),
    postgres: broadcastCell(postgres ? of(postgres) : undefined),
    floor: broadcastCell(floor ? of(floor) : undefined),
    overFloor: overFloor((run) => of(run)?.allReceivedMs),
    naive: '—',
    ratio: '—',
    target,
  });
  const cpuCell = (b: BroadcastResult | undefined) =>
    b
      ? `${fmt(b.serverCpuUsPerRecipient, 0)} µs (GC ${fmt(b.serverGcUsPerRecipient, 0)} µs; main thread ${fmt(b.serverMainThreadUsPerRecipient, 0)} µs, busy ${b.serverBusyPercent} %; clients ${fmt(b.clientsCpuUsPerRecipient, 0)} µs)`
      : '—';
  const streamMemory = (run: RealRun | null) => (run?.streams ? `${fmt(run.streams.memory.rssPerClientKB, 1)} KB` : '—');
  const capacityMemory = (run: RealRun | null) =>
    run?.capacity ? `${fmt(run.capacity.load.memory.rssPerClientKB, 1)} KB (${fmt(run.capacity.load.memory.rssMB, 0)} MB)` : '—';
  const naiveLarge = naive?.large ?? null;
  const naiveLargeMissing = naive && !naiveLarge ? 'not run (see notes)' : '—';
  return [
    {
      figure: `DB queries/s, ${count(SMALL_LOAD)} idle long-polls`,
      sqlite: queries(real?.small),
      postgres: queries(postgres?.small),
      floor: 'no database',
      overFloor: '—',
      naive: naive ? queries(naive.small) + saturated(naive.small) : '—',
      ratio: ratio(naive?.small.idle.queriesPerSecond, real?.small.idle.queriesPerSecond),
      target: '0',
    },
    {
      figure: `DB queries/s, ${count(LARGE_LOAD)} idle long-polls`,
      sqlite: queries(real?.large),
      postgres: queries(postgres?.large),
      floor: 'no database',
      overFloor: '—',
      naive: naiveLarge ? queries(naiveLarge) + saturated(naiveLarge) : naiveLargeMissing,
      ratio: naiveLarge?.saturated ? 'n/a (saturated)' : ratio(naiveLarge?.idle.queriesPerSecond, real?.large.idle.queriesPerSecond),
      target: '0',
    },
    {
      figure: `Server RSS per waiting client, ${count(SMALL_LOAD)}`,
      sqlite: memory(real?.small),
      postgres: memory(postgres?.small),
      floor: memory(floor?.small),
      overFloor: overFloor((run) => run.small.memory.rssPerClientKB),
      naive: naive ? memory(naive.small) + saturated(naive.small) : '—',
      ratio: ratio(naive?.small.memory.rssPerClientKB, real?.small.memory.rssPerClientKB),
      target: '< 20 KB',
    },
    {
      figure: `Server RSS per waiting client, ${count(LARGE_LOAD)}`,
      sqlite: memory(real?.large),
      postgres: memory(postgres?.large),
      floor: memory(floor?.large),
      overFloor: overFloor((run) => run.large.memory.rssPerClientKB),
      naive: naiveLarge ? memory(naiveLarge) + saturated(naiveLarge) : naiveLargeMissing,
      ratio: naiveLarge?.saturated ? 'n/a (saturated)' : ratio(naiveLarge?.memory.rssPerClientKB, real?.large.memory.rssPerClientKB),
      target: '≤ 15 KB',
    },
    ...(CAPACITY
      ? [
          {
            figure: `Server RSS per waiting client, ${count(CAPACITY)} (RSS in all)`,
            sqlite: capacityMemory(real),
            postgres: capacityMemory(postgres),
            floor: capacityMemory(floor),
            overFloor: overFloor((run) => run.capacity?.load.memory.rssPerClientKB),
            naive: '—',
            ratio: '—',
            target: 'RSS < 1 GB',
          },
        ]
      : []),
    ...(STREAMS
      ? [
          {
            figure: `Server RSS per open SSE stream, ${count(STREAMS)}`,
            sqlite: streamMemory(real),
            postgres: streamMemory(postgres),
            floor: streamMemory(floor),
            overFloor: overFloor((run) => run.streams?.memory.rssPerClientKB),
            naive: '—',
            ratio: '—',
            target: '≤ 12 KB',
          },
        ]
      : []),
    {
      figure: `create→receive p50 / p99, ${count(SMALL_LOAD)} waiting`,
      sqlite: latencyCell(real?.latency, 1),
      postgres: latencyCell(postgres?.latency, 1),
      floor: latencyCell(floor?.latency, 1),
      overFloor: overFloor((run) => run.latency.p99Ms, ' (p99)'),
      naive: latencyCell(naive?.latency, 0),
      ratio: naive && real ? `${ratio(naive.latency.p50Ms, real.latency.p50Ms)} (p50)` : '—',
      target: '',
    },
    {
      figure: `Burst: ${count(BURST)} waiting users create at once, create→receive p50 / p99`,
      sqlite: latencyCell(real?.burst, 0),
      postgres: latencyCell(postgres?.burst, 0),
      floor: latencyCell(floor?.burst, 0),
      overFloor: overFloor((run) => run.burst.p99Ms, ' (p99)'),
      naive: '—',
      ratio: '—',
      target: 'p99 ≤ 2.5× floor (SQLite), ≤ 3× (Postgres)',
    },
    broadcastRow(
      `Broadcast to ${count(LARGE_LOAD)} waiting: until the last received${BROADCAST_ROUNDS > 1 ? ` (median of ${BROADCAST_ROUNDS})` : ''}`,
      (run) => run.broadcast, '≤ 2× floor and ≤ 1 s'),
    {
      figure: `The same broadcast: server CPU per recipient (of it, GC pauses; its main thread's busy time, and share of the broadcast; the clients' CPU, in this process)`,
      sqlite: cpuCell(real?.broadcast),
      postgres: cpuCell(postgres?.broadcast),
      floor: cpuCell(floor?.broadcast),
      overFloor: overFloor((run) => run.broadcast.serverCpuUsPerRecipient, ' (server)'),
      naive: '—',
      ratio: '—',
      target: '—',
    },
    ...(CAPACITY
      ? [broadcastRow(`Broadcast to ${count(CAPACITY)} waiting: until the last received`, (run) => run.capacity?.broadcast, '≤ 5 s')]
      : []),
    ...(STREAMS
      ? [broadcastRow(`Broadcast to ${count(STREAMS)} open SSE streams: until the last received`, (run) => run.streams?.broadcast, '≤ 1 s')]
      : []),
  ];
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

function details(results: Results): string[] {
  const lines: string[] = [];
  const idle = (label: string, load: IdleLoad | null | undefined) => {
    if (!load) return;
    const i = load.idle;
    lines.push(
      `${label}: ${count(i.waitingClients)} waiting; ${i.queries} queries in ${i.seconds} s; server CPU ${i.serverCpuPercent}% of a core; ` +
        `loop delay p99 ${i.loopDelayP99Ms} ms; ${i.answersDuringWindow} answers and ${i.errorsDuringWindow} errors in the window; ` +
        `RSS ${load.memory.baselineRssMB} → ${load.memory.rssMB} MB (per client: heap used ${load.memory.heapPerClientKB} KB, heap reserved ${load.memory.heapTotalPerClientKB} KB); ` +
        `ramp ${count(load.ramp.clients)} clients in ${load.ramp.ms} ms at ${load.ramp.queriesPerConnect} queries/connect` +
        (load.saturated ? `; SATURATED: ${load.saturationReason}` : ''),
    );
  };
  const { real, naive, postgres, floor } = results;
  lines.push(
    'servers: ' +
      Object.entries(results.servers)
        .map(([label, r]) => `${label} = ${r.dialect}${r.sqliteSynchronous ? ` (PRAGMA synchronous=${r.sqliteSynchronous})` : ''}, ${r.bus} bus`)
        .join('; '),
  );
  idle('real/sqlite small', real?.small);
  idle('real/sqlite large', real?.large);
  idle('naive/sqlite small', naive?.small);
  idle('naive/sqlite large', naive?.large);
  idle('real/postgres+redis small', postgres?.small);
  idle('real/postgres+redis large', postgres?.large);
  idle('floor small', floor?.small);
  idle('floor large', floor?.large);
  idle('real/sqlite capacity', real?.capacity?.load);
  idle('real/postgres+redis capacity', postgres?.capacity?.load);
  idle('floor capacity', floor?.capacity?.load);
  const latencyLine = (label: string, l: LatencySummary | undefined) => {
    if (l) lines.push(`${label}: n=${l.samples} min ${l.minMs} p50 ${l.p50Ms} p90 ${l.p90Ms} p99 ${l.p99Ms} max ${l.maxMs} mean ${l.meanMs} ms`);
  };
  latencyLine('latency real/sqlite', real?.latency);
  latencyLine('latency real/postgres+redis', postgres?.latency);
  latencyLine('latency naive/sqlite', naive?.latency);
  latencyLine('latency floor', floor?.latency);
  latencyLine('burst real/sqlite', real?.burst);
  latencyLine('burst real/postgres+redis', postgres?.burst);
  latencyLine('burst floor', floor?.burst);
  const broadcastLine = (label: string, b: BroadcastResult | undefined) => {
    if (!b) return;
    lines.push(
      `broadcast ${label}: ${count(b.recipients)}/${count(b.waitingClients)} received; ${count(b.created)} rows created; first ${b.firstReceivedMs} ms, ` +
        `median ${b.medianReceivedMs} ms, last ${b.allReceivedMs} ms; the admin's create answered in ${b.createAnsweredMs} ms; ` +
        `${count(b.queries)} queries until everyone waited again; longest server event-loop stall ${count(b.loopDelayMaxMs)} ms; ` +
        `CPU per recipient: server ${b.serverCpuUsPerRecipient} µs (GC pauses ${b.serverGcUsPerRecipient} µs; main thread busy ${b.serverMainThreadUsPerRecipient} µs, ${b.serverBusyPercent} % of the time), clients ${b.clientsCpuUsPerRecipient} µs` +
        (b.roundsMs ? `; the median of ${b.roundsMs.length} broadcasts (last received ${b.roundsMs.join(', ')} ms)` : ''),
    );
  };
  broadcastLine('real/sqlite', real?.broadcast);
  broadcastLine('real/postgres+redis', postgres?.broadcast);
  broadcastLine('floor', floor?.broadcast);
  broadcastLine(`real/sqlite to ${CAPACITY}`, real?.capacity?.broadcast);
  broadcastLine(`real/postgres+redis to ${CAPACITY}`, postgres?.capacity?.broadcast);
  broadcastLine(`floor to ${CAPACITY}`, floor?.capacity?.broadcast);
  const streamsLine = (label: string, run: RealRun | null) => {
    if (!run?.streams) return;
    const { memory, counters } = run.streams;
    lines.push(
      `streams ${label}: ${count(memory.waitingClients)} open; RSS ${memory.baselineRssMB} → ${memory.rssMB} MB (per stream: heap used ${memory.heapPerClientKB} KB, ` +
        `heap reserved ${memory.heapTotalPerClientKB} KB); ${count(counters.events)} events read, ${counters.errors} errors ${JSON.stringify(counters.httpErrors)}`,
    );
    broadcastLine(`${label} to ${count(memory.waitingClients)} streams`, run.streams.broadcast);
  };
  streamsLine('real/sqlite', real);
  streamsLine('real/postgres+redis', postgres);
  streamsLine('floor', floor);
  const counters = (label: string, c: LongPollClients['counters'] | undefined) => {
    if (c) {
      lines.push(
        `clients ${label}: ${count(c.responses)} answers ${JSON.stringify(c.byStatus)}, ${c.errors} errors ` +
          `(HTTP ${JSON.stringify(c.httpErrors)}, socket ${JSON.stringify(c.socketErrors)}), ${c.duplicates} duplicate deliveries`,
      );
    }
  };
  counters('real/sqlite', real?.clientCounters);
  counters('naive/sqlite', naive?.clientCounters);
  counters('real/postgres+redis', postgres?.clientCounters);
  counters('floor', floor?.clientCounters);
  if (naive?.largeSkippedBecause) lines.push(`naive ${count(LARGE_LOAD)}: ${naive.largeSkippedBecause}`);
  if (results.config.capacityNote) lines.push(results.config.capacityNote);
  for (const [part, error] of Object.entries(results.failures)) lines.push(`FAILED ${part}: ${error}`);
  return lines;
}

interface Results {
  date: string;
  code: CodeUnderTest;
  machine: {
    platform: string;
    release: string;
    arch: string;
    cpus: number;
    cpuModel: string;
    totalMemBytes: number;
    totalMemGiB: number;
    node: string;
  };
  config: {
    loads: [number, number];
    samples: number;
    naiveSamples: number;
    latencyWarmUpSamples: number;
    windowSeconds: number;
    longPollTimeoutSeconds: number;
    batch: number;
    burst: number;
    burstRounds: number;
    broadcastRounds: number;
    capacity: number;
    streams: number;
    /** Why the capacity run holds fewer than BENCH_CAPACITY, when it does. */
    capacityNote: string | null;
    /** Extra node flags of the server process (BENCH_SERVER_NODE_OPTIONS). */
    serverNodeOptions: string;
    createPath: string;
    postgres: string | null;
    redis: string | null;
  };
  servers: Record<string, ReadyMessage>;
  real: RealRun | null;
  naive: NaiveRun | null;
  postgres: PostgresRun | null;
  floor: RealRun | null;
  failures: Record<string, string>;
  totalSeconds: number;
}

function markdown(results: Results, tableRows: Row[]): string {
  const m = results.machine;
  return [
    '# Notifications benchmark',
    '',
    `${results.date}, commit ${results.code.commit}${results.code.uncommitted.length ? ' (with uncommitted changes)' : ''} — ${m.platform} ${m.arch}, ${m.cpus} CPUs (${m.cpuModel}), ${m.totalMemGiB} GiB RAM, Node ${m.node}.`,
    `One server process (forked, bundled as npm run build bundles the API; extra node flags: ${results.config.serverNodeOptions}); clients in the orchestrator process; long-poll timeout=${LONG_POLL_TIMEOUT_S} s; ` +
      `idle windows of ${WINDOW_S} s; creates through POST /api/notifications/test/ (latency; bursts of ${BURST} at once, ${BURST_ROUNDS} rounds) and the admin POST /api/notifications/ with {"all": true} (broadcast; ${BROADCAST_ROUNDS} to the large load, the median reported).`,
    '',
    table(TABLE_HEADER, tableRows.map(tableCells)),
    '',
    ...details(results).map((line) => `- ${line}`),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const started = now();
  const dir = mkdtempSync(join(os.tmpdir(), 'punchclock-bench-'));
  onCleanup('temp SQLite files', () => rmSync(dir, { recursive: true, force: true }));
  const cpus = os.cpus();
  const results: Results = {
    date: new Date().toISOString(),
    code: codeUnderTest(),
    machine: {
      platform: os.platform(),
      release: os.release(),
      arch: os.arch(),
      cpus: cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      totalMemBytes: os.totalmem(),
      totalMemGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
      node: process.version,
    },
    config: {
      loads: [SMALL_LOAD, LARGE_LOAD],
      samples: SAMPLES,
      naiveSamples: NAIVE_SAMPLES,
      latencyWarmUpSamples: LATENCY_WARM_UP,
      windowSeconds: WINDOW_S,
      longPollTimeoutSeconds: LONG_POLL_TIMEOUT_S,
      batch: BATCH,
      burst: BURST,
      burstRounds: BURST_ROUNDS,
      broadcastRounds: BROADCAST_ROUNDS,
      capacity: CAPACITY,
      streams: STREAMS,
      capacityNote: CAPACITY_NOTE,
      serverNodeOptions: SERVER_NODE_OPTIONS,
      createPath: 'HTTP POST /api/notifications/test/ (latency), HTTP POST /api/notifications/ {"all": true} as admin (broadcast)',
      postgres: SKIP_POSTGRES ? null : POSTGRES_URL.replace(/\/\/[^@/]*@/, '//…@'),
      redis: SKIP_POSTGRES ? null : REDIS_URL,
    },
    servers: serversStarted,
    real: null,
    naive: null,
    postgres: null,
    floor: null,
    failures: {},
    totalSeconds: 0,
  };
  const attempt = async <T>(part: string, work: () => Promise<T>): Promise<T | null> => {
    try {
      return await work();
    } catch (error) {
      results.failures[part] = error instanceof Error ? error.message : String(error);
      log(`${part} FAILED: ${results.failures[part]}`);
      return null;
    }
  };

  if (RUNS.has('floor')) results.floor = await attempt('floor', () => runReal('floor', 'none', undefined, 'floor'));
  if (RUNS.has('sqlite')) results.real = await attempt('real/sqlite', () => runReal('real/sqlite', sqliteUrl(dir, 'real')));
  if (RUNS.has('naive')) results.naive = await attempt('naive/sqlite', () => runSqliteNaive(dir));
  if (RUNS.has('postgres') && !SKIP_POSTGRES) results.postgres = await attempt('real/postgres+redis', () => runPostgres());
  results.totalSeconds = Math.round((now() - started) / 100) / 10;

  const tableRows = rows(results);
  const m = results.machine;
  const out = [
    '',
    `Punchclock notifications benchmark — ${results.date}`,
    `Machine: ${m.platform} ${m.release} ${m.arch}; os.cpus().length=${m.cpus} (${m.cpuModel}); os.totalmem()=${count(m.totalMemBytes)} bytes (${m.totalMemGiB} GiB); Node ${m.node}`,
    `One server process (extra node flags: ${results.config.serverNodeOptions}); ${LONG_POLL_TIMEOUT_S} s long-polls; idle windows of ${WINDOW_S} s; latency and broadcast creates over HTTP (${results.config.createPath}).`,
    '',
    table(TABLE_HEADER, tableRows.map(tableCells)),
    '',
    ...details(results),
    '',
    `Total ${results.totalSeconds} s. Results: bench/results/${RESULTS_NAME}.json, bench/results/${RESULTS_NAME}.md`,
    '',
  ].join('\n');
  process.stdout.write(out);

  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${RESULTS_NAME}.json`), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(RESULTS_DIR, `${RESULTS_NAME}.md`), markdown(results, tableRows));
  return Object.keys(results.failures).length === 0 ? 0 : 1;
}

const watchdog = setTimeout(() => {
  log(`the whole run exceeded ${WATCHDOG_MS / 60_000} minutes: stopping`);
  void cleanUp().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  log(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await cleanUp();
  clearTimeout(watchdog);
}
process.exit(exitCode);

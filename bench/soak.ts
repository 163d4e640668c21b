// The soak: `npm run soak` (issue 17; not part of `npm test`).
//
// Two instances of the real server (server/main.ts, each its own process) on one Postgres database
// and a Redis of the soak's own; 1,000 users, each with one client (70 % long-polling, 30 %
// streaming over SSE) that sends each request to one of the instances as a load balancer would and
// cuts requests at random moments; a steady producer creating notifications for random users
// through the admin API. In the middle, in turn: SIGKILL of one instance (started again 3 s later),
// SIGTERM of the other (started again once it has exited), and a Redis outage of 10 s. Then the
// producer stops, the clients get time to receive what is left, and everything is checked against
// the database:
//   created, received (unique), duplicates (at-least-once: allowed, counted),
//   lost (created, never received by its user: must be 0),
//   delivered without receipt (delivered_at set, never received: must be 0; those of a request the
//     client cut after the server had written are counted apart),
//   wrong-user (received by a client of another user: must be 0),
//   create→receive p50/p99 inside and outside the fault windows, peak RSS of each instance.
// Writes bench/results/soak.{json,md}; exits 1 when a must-be-0 figure is not 0.
//
// Environment (all optional):
//   SOAK_SECONDS        how long the producer runs, default 120
//   SOAK_USERS          users (one client each), default 1000
//   SOAK_RATE           notifications created per second, default 20
//   SOAK_POSTGRES_URL   server to create the throw-away database on, default postgres://postgres@127.0.0.1:5432/test
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inArray } from 'drizzle-orm';
import { openDatabase } from '../db/open-database';
import { hashPassword } from '../server/auth/passwords';
import { newToken } from '../server/auth/tokens';
import { usernameIdentity } from '../server/auth/username-identity';
import { Cleanups, codeUnderTest, count, envInt, fmt, log, machine, now, percentile, runBenchmark, sleep, table, writeResults } from './support/measure';
import { answers, freePort } from './support/server-process';
import { SoakClients, type Abort, type Receipt, type SoakUser } from './support/soak-clients';
import { createThrowawayDatabase } from './support/throwaway-database';

const SECONDS = envInt('SOAK_SECONDS', 120);
const USERS = envInt('SOAK_USERS', 1000);
const RATE = envInt('SOAK_RATE', 20);
const POSTGRES_URL = process.env.SOAK_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Time the clients get after the producer stops to receive what is left. */
const DRAIN_MS = 45_000;
/** How long after a fault has been repaired its window still counts (the clients find their way back). */
const RECOVERY_MS = 5000;

const cleanups = new Cleanups();

/** A process the soak starts, kills and starts again on the same port, its peak memory sampled. */
class Restartable {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  peakRssMiB = 0;
  private readonly sampling: NodeJS.Timeout;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly ready: () => Promise<boolean>,
  ) {
    this.sampling = setInterval(() => this.sample(), 250);
    cleanups.add(name, async () => {
      clearInterval(this.sampling);
      await this.signal('SIGKILL');
    });
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async start(): Promise<void> {
    const child = spawn(this.command, this.args, { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ['ignore', 'ignore', 'inherit'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (this.child === child) this.child = undefined;
    });
    const deadline = now() + 60_000;
    while (!(await this.ready())) {
      if (!this.child || now() > deadline) throw new Error(`${this.name} did not start`);
      await sleep(50);
    }
  }

  /** Sends the signal and waits until the process has exited. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.child) return;
    this.child.kill(signal);
    await this.exited;
  }

  private sample(): void {
    if (!this.child?.pid) return;
    try {
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      this.peakRssMiB = Math.max(this.peakRssMiB, rss);
    } catch {
      // exited between the check and the read
    }
  }
}


const answersPing = (port: number) => async () =>
  new Promise<boolean>((resolve) => {
    const probe = spawn('redis-cli', ['-p', String(port), 'ping'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    probe.stdout.on('data', (chunk) => (out += chunk));
    probe.on('exit', () => resolve(out.trim() === 'PONG'));
  });

interface Seeded {
  users: SoakUser[];
  adminToken: string;
}

/** USERS users (70 % long-poll, 30 % SSE) with a token each, and an admin for the producer; one password hash for all. */
async function seed(databaseUrl: string): Promise<Seeded> {
  const store = await openDatabase(databaseUrl);
  try {
    const { t } = store;
    const passwordHash = await hashPassword('soak password that nobody types');
    const createdAt = new Date();
    const names = Array.from({ length: USERS + 1 }, (_, i) => (i === USERS ? 'soak_admin' : `soak_user_${i}`));
    await store.insertAll(
      t.users,
      names.map((username, i) => {
        const identity = usernameIdentity(username);
        return { username, usernameKey: identity.key, usernameSkeleton: identity.skeleton, passwordHash, firstName: '', lastName: '', isAdmin: i === USERS, createdAt };
      }),
    );
    const rows = await store.db.select({ id: t.users.id, username: t.users.username }).from(t.users).where(inArray(t.users.username, names));
    const idOf = new Map(rows.map((row) => [row.username, row.id]));
    const tokens = names.map((name) => ({ userId: idOf.get(name)!, ...newToken() }));
    await store.insertAll(
      t.authTokens,
      tokens.map(({ userId, digest }) => ({ userId, digest, createdAt, lastUsedAt: createdAt })),
    );
    const users = tokens.slice(0, USERS).map(({ userId, token }, i): SoakUser => ({ id: userId, token, transport: i % 10 < 7 ? 'long-poll' : 'sse' }));
    return { users, adminToken: tokens[USERS].token };
  } finally {
    await store.close();
  }
}

interface Window {
  fault: string;
  from: number;
  to: number;
}

/** Creates RATE notifications a second for random users, through whichever instance is up; returns when told to stop. */
function produce(seeded: Seeded, ports: () => number[], stop: { now: boolean }): Promise<{ requests: number; failures: number }> {
  let requests = 0;
  let failures = 0;
  const one = async () => {
    const user = seeded.users[Math.floor(Math.random() * seeded.users.length)];
    const candidates = ports();
    const port = candidates[requests % candidates.length];
    requests++;
    const ok = await fetch(`http://127.0.0.1:${port}/api/notifications/`, {
      method: 'POST',
      headers: { Authorization: `Token ${seeded.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_ids: [user.id], type: 'INFO', message: `soak ${requests}` }),
    }).then(
      (response) => response.status === 201,
      () => false,
    );
    if (!ok) failures++;
  };
  return (async () => {
    const pending = new Set<Promise<void>>();
    for (let next = now(); !stop.now; next += 1000 / RATE) {
      const work = one().finally(() => pending.delete(work));
      pending.add(work);
      await sleep(Math.max(0, next + 1000 / RATE - now()));
    }
    await Promise.all(pending);
    return { requests, failures };
  })();
}

async function main(): Promise<number> {
  const startedAt = now();
  const database = await createThrowawayDatabase(POSTGRES_URL, 'punchclock_soak');
  cleanups.add('database', () => database.drop());
  const seeded = await seed(database.url);
  log(`seeded ${count(USERS)} users`);

  const redisPort = await freePort();
  const redis = new Restartable('redis', redisPort, 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, answersPing(redisPort));
  await redis.start();
  const instances = await Promise.all(
    ['instance A', 'instance B'].map(async (name) => {
      const port = await freePort();
      const env = { PORT: String(port), DATABASE_URL: database.url, REDIS_URL: `redis://127.0.0.1:${redisPort}`, RATE_LIMITS: 'off', LOG_LEVEL: 'warn' };
      return new Restartable(name, port, process.execPath, ['--import', 'tsx', 'server/main.ts'], env, () => answers(`http://127.0.0.1:${port}/health/live`));
    }),
  );
  await Promise.all(instances.map((instance) => instance.start()));
  const livePorts = () => {
    const up = instances.filter((instance) => instance.running).map((instance) => instance.port);
    return up.length > 0 ? up : instances.map((instance) => instance.port);
  };

  const clients = new SoakClients(seeded.users, { ports: livePorts, disconnectChance: 0.05, maxStreamMs: 30_000 });
  clients.start();
  cleanups.add('clients', () => clients.stop());
  log(`${count(USERS)} clients connected; producing ${RATE}/s for ${SECONDS} s`);
  const stop = { now: false };
  const producing = produce(seeded, livePorts, stop);

  const windows: Window[] = [];
  const producerStart = now();
  /** Until this share of the producer's time has passed. */
  const untilShare = (share: number) => sleep(Math.max(0, producerStart + share * SECONDS * 1000 - now()));
  await untilShare(0.25);
  {
    const from = Date.now();
    log('fault: SIGKILL instance A');
    await instances[0].signal('SIGKILL');
    await sleep(3000);
    await instances[0].start();
    windows.push({ fault: 'SIGKILL of instance A (started again after 3 s)', from, to: Date.now() + RECOVERY_MS });
  }
  await untilShare(0.45);
  {
    const from = Date.now();
    log('fault: SIGTERM instance B');
    await instances[1].signal('SIGTERM');
    await instances[1].start();
    windows.push({ fault: 'SIGTERM of instance B (graceful; started again once it had exited)', from, to: Date.now() + RECOVERY_MS });
  }
  await untilShare(0.65);
  {
    const from = Date.now();
    log('fault: Redis down for 10 s');
    await redis.signal('SIGKILL');
    await sleep(10_000);
    await redis.start();
    windows.push({ fault: 'Redis outage of 10 s (SIGKILL, started again)', from, to: Date.now() + RECOVERY_MS });
  }
  await untilShare(1);
  stop.now = true;
  const produced = await producing;
  log(`producer stopped: ${count(produced.requests)} requests, ${count(produced.failures)} failed; draining`);

  // The truth: every notification in the database, and whether it counts as delivered.
  const store = await openDatabase(database.url);
  cleanups.add('store', () => store.close());
  const readAll = () =>
    store.db.select({ id: store.t.notifications.id, userId: store.t.notifications.userId, createdAt: store.t.notifications.createdAt, deliveredAt: store.t.notifications.deliveredAt }).from(store.t.notifications);
  const drainUntil = now() + DRAIN_MS;
  let rows = await readAll();
  while (now() < drainUntil) {
    const received = new Set(clients.receipts.map((receipt) => receipt.notificationId));
    if (rows.every((row) => received.has(row.id))) break;
    await sleep(500);
    rows = await readAll();
  }
  await clients.stop();
  rows = await readAll();
  const report = {
    date: new Date().toISOString(),
    code: codeUnderTest(),
    machine: machine(),
    settings: { seconds: SECONDS, users: USERS, rate: RATE, longPoll: seeded.users.filter((user) => user.transport === 'long-poll').length, sse: seeded.users.filter((user) => user.transport === 'sse').length },
    producer: produced,
    clientErrors: clients.errors,
    faults: windows.map(({ fault, from, to }) => ({ fault, seconds: fmt((to - from) / 1000) })),
    ...evaluate(rows, clients.receipts, clients.aborts, windows, seeded.users),
    peakRssMiB: Object.fromEntries([...instances, redis].map((process) => [process.name, Math.round(process.peakRssMiB * 10) / 10])),
    totalSeconds: (now() - startedAt) / 1000,
  };
  const markdown = render(report);
  writeResults('soak', report, markdown);
  console.log(`\n${markdown}`);
  return report.passed ? 0 : 1;
}

interface Row {
  id: string;
  userId: number;
  createdAt: Date;
  deliveredAt: Date | null;
}

function evaluate(rows: Row[], receipts: Receipt[], aborts: Abort[], windows: Window[], users: SoakUser[]) {
  const transportOf = new Map(users.map((user) => [user.id, user.transport]));
  const owner = new Map(rows.map((row) => [row.id, row]));
  const inFault = (createdAt: number) => windows.some((window) => createdAt >= window.from && createdAt <= window.to);
  const firstReceipt = new Map<string, Receipt>();
  let duplicates = 0;
  /** Where the duplicates came from: over which transport, and whether the notification was made during a fault. */
  const duplicatesBy: Record<string, number> = {};
  let wrongUser = 0;
  for (const receipt of receipts) {
    const row = owner.get(receipt.notificationId);
    if (!row || row.userId !== receipt.userId) {
      wrongUser++;
      continue;
    }
    if (firstReceipt.has(receipt.notificationId)) {
      duplicates++;
      const where = `${transportOf.get(receipt.userId)}, ${inFault(row.createdAt.getTime()) ? 'made during a fault' : 'made outside the faults'}`;
      duplicatesBy[where] = (duplicatesBy[where] ?? 0) + 1;
    } else firstReceipt.set(receipt.notificationId, receipt);
  }
  const notReceived = rows.filter((row) => !firstReceipt.has(row.id));
  // Delivered yet never received: explained only by a request its client cut after the server wrote.
  const cutAfterWrite = (row: Row) =>
    aborts.some((abort) => abort.userId === row.userId && row.deliveredAt!.getTime() >= abort.startedAt - 1000 && row.deliveredAt!.getTime() <= abort.abortedAt + 1000);
  const deliveredUnseen = notReceived.filter((row) => row.deliveredAt !== null);
  const byClientCut = deliveredUnseen.filter(cutAfterWrite);
  const lost = notReceived.filter((row) => row.deliveredAt === null);
  const latencies = { inFaults: [] as number[], outside: [] as number[] };
  for (const [id, receipt] of firstReceipt) {
    const created = owner.get(id)!.createdAt.getTime();
    (inFault(created) ? latencies.inFaults : latencies.outside).push(receipt.at - created);
  }
  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { count: sorted.length, p50Ms: sorted.length ? percentile(sorted, 50) : null, p99Ms: sorted.length ? percentile(sorted, 99) : null };
  };
  const figures = {
    created: rows.length,
    receivedUnique: firstReceipt.size,
    duplicates,
    duplicatesBy,
    lost: lost.length,
    deliveredWithoutReceipt: deliveredUnseen.length - byClientCut.length,
    deliveredToARequestItsClientCut: byClientCut.length,
    wrongUser,
    latency: { outsideFaults: summary(latencies.outside), insideFaults: summary(latencies.inFaults) },
    usersWithNotifications: new Set(rows.map((row) => row.userId)).size,
  };
  return { ...figures, passed: figures.lost === 0 && figures.deliveredWithoutReceipt === 0 && figures.wrongUser === 0 && figures.created > 0 };
}

interface SoakReport extends ReturnType<typeof evaluate> {
  date: string;
  code: ReturnType<typeof codeUnderTest>;
  machine: ReturnType<typeof machine>;
  settings: { seconds: number; users: number; rate: number; longPoll: number; sse: number };
  producer: { requests: number; failures: number };
  clientErrors: Record<string, number>;
  faults: Array<{ fault: string; seconds: string }>;
  peakRssMiB: Record<string, number>;
  totalSeconds: number;
}

function render(r: SoakReport): string {
  const ms = (value: number | null) => (value === null ? '—' : `${fmt(value, 0)} ms`);
  return [
    '# Punchclock soak',
    '',
    `${r.date}, commit ${r.code.commit}${r.code.uncommitted.length ? ' (with uncommitted changes)' : ''}; ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}.`,
    `Two instances (server/main.ts) on Postgres + Redis, ${count(r.settings.users)} users (${count(r.settings.longPoll)} long-polling, ${count(r.settings.sse)} streaming; requests cut at random), ${r.settings.rate} notifications/s for ${r.settings.seconds} s, then up to ${DRAIN_MS / 1000} s for the clients to receive the rest.`,
    '',
    'Faults, in turn:',
    ...r.faults.map((fault) => `- ${fault.fault}: window of ${fault.seconds} s (until ${RECOVERY_MS / 1000} s after the repair)`),
    '',
    table(
      ['figure', 'value'],
      [
        ['created', count(r.created)],
        ['received (unique)', count(r.receivedUnique)],
        ['duplicates (received again: at-least-once)', count(r.duplicates)],
        ['lost (must be 0)', count(r.lost)],
        ['delivered without receipt (must be 0)', count(r.deliveredWithoutReceipt)],
        ['delivered to a request its client cut after the write (apart)', count(r.deliveredToARequestItsClientCut)],
        ['wrong user (must be 0)', count(r.wrongUser)],
        ['create → receive p50 / p99, outside the fault windows', `${ms(r.latency.outsideFaults.p50Ms)} / ${ms(r.latency.outsideFaults.p99Ms)} (${count(r.latency.outsideFaults.count)})`],
        ['create → receive p50 / p99, inside the fault windows', `${ms(r.latency.insideFaults.p50Ms)} / ${ms(r.latency.insideFaults.p99Ms)} (${count(r.latency.insideFaults.count)})`],
        ...Object.entries(r.peakRssMiB).map(([name, mib]) => [`peak RSS, ${name}`, `${fmt(mib)} MiB`]),
        ['producer requests / failed (during faults)', `${count(r.producer.requests)} / ${count(r.producer.failures)}`],
      ],
    ),
    '',
    `Duplicates by transport and moment: ${JSON.stringify(r.duplicatesBy)}.`,
    '',
    `Client errors (retried on the other instance): ${JSON.stringify(r.clientErrors)}.`,
    '',
    r.passed ? 'Passed: nothing lost, nothing marked delivered unseen, nothing to the wrong user.' : 'FAILED: see the must-be-0 figures.',
    '',
    `Total ${fmt(r.totalSeconds)} s.`,
    '',
  ].join('\n');
}

await runBenchmark(main, cleanups, (SECONDS + 300) * 1000);

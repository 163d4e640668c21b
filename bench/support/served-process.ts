// What every server process of the notifications benchmark shares, whatever it serves (ours in
// bench-server.ts, the in-memory floor in floor-server.ts): answering the orchestrator's IPC
// requests, reading its own memory, CPU and event-loop delay, and never outliving the orchestrator.
import { writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import type { BenchReply, BenchRequest, ProfileRequest, ReadyMessage, SeedResult, ServerStats } from './protocol';

/** What only the served app knows; the process figures are added by `serveOrchestrator`. */
export type AppStats = Pick<ServerStats, 'queries' | 'hub' | 'naiveWaiting' | 'busHealthy'>;

export interface ServedApp {
  server: Server;
  seed(users: number, admin: boolean): Promise<SeedResult>;
  stats(): AppStats;
  /** Closes what the app holds (the HTTP server is closed by `serveOrchestrator`). */
  close(): Promise<void>;
}

// The histogram records whole timer intervals: the delay is what exceeds the resolution.
const LOOP_RESOLUTION_MS = 10;
const excessDelayMs = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);

export function requireOrchestrator(entry: string): void {
  if (process.send) return;
  console.error(`${entry} is started by bench/notifications.ts (child_process.fork), not directly.`);
  process.exit(2);
}

export async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve);
  });
  return (server.address() as AddressInfo).port;
}

/**
 * A CPU profile and a sampling heap profile of this process between 'start' and 'stop'
 * (BENCH_PROFILE_DIR: the broadcasts'), written to `file` and beside it as .heapprofile. The heap
 * profile counts what was allocated, collected or not: what the collector had to deal with.
 */
async function profile(request: ProfileRequest, session: Session): Promise<null> {
  if (request.action === 'start') {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 32_768,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return null;
  }
  const { profile: recorded } = await session.post('Profiler.stop');
  const { profile: allocated } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  await writeFile(request.file, JSON.stringify(recorded));
  await writeFile(request.file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(allocated));
  return null;
}

async function collectGarbage(): Promise<void> {
  if (!globalThis.gc) return;
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Answers the orchestrator's requests (./protocol.ts) for `app`, then tells it the server is ready. */
export function serveOrchestrator(app: ServedApp, ready: Omit<ReadyMessage, 'type'>): void {
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  // One entry per collection: a few dozen per broadcast, nothing per request.
  let gcPauseMs = 0;
  const gcPauses = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauseMs += entry.duration;
  });
  gcPauses.observe({ entryTypes: ['gc'] });
  let shuttingDown = false;
  const profiler = new Session();

  const stats = async (gc: boolean, resetLoopDelay: boolean): Promise<ServerStats> => {
    if (gc) await collectGarbage();
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const connections = await new Promise<number>((resolve) => app.server.getConnections((error, count) => resolve(error ? -1 : count)));
    const result: ServerStats = {
      ...app.stats(),
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      gcPauseMs,
      loopActiveMs: loop.active,
      loopIdleMs: loop.idle,
      loopDelayP50Ms: excessDelayMs(loopDelay.percentile(50)),
      loopDelayP99Ms: excessDelayMs(loopDelay.percentile(99)),
      loopDelayMaxMs: excessDelayMs(loopDelay.max),
      connections,
    };
    if (resetLoopDelay) loopDelay.reset();
    return result;
  };

  const shutdown = async (): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    loopDelay.disable();
    gcPauses.disconnect();
    app.server.close();
    app.server.closeAllConnections();
    await app.close();
  };

  const handle = async (request: BenchRequest): Promise<unknown> => {
    switch (request.type) {
      case 'seed':
        return app.seed(request.users, request.admin);
      case 'stats':
        return stats(request.gc ?? false, request.resetLoopDelay ?? false);
      case 'shutdown':
        await shutdown();
        return null;
      case 'profile':
        return profile(request, profiler);
      default:
        throw new Error(`unknown request ${(request as { type: string }).type}`);
    }
  };

  const reply = (message: BenchReply) => process.send?.(message);
  process.on('message', (request: BenchRequest) => {
    handle(request).then(
      (result) => {
        reply({ id: request.id, ok: true, result });
        if (request.type === 'shutdown') process.disconnect?.();
      },
      (error: unknown) =>
        reply({ id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });

  // The orchestrator is gone (finished, crashed or killed): never outlive it.
  process.on('disconnect', () => {
    void shutdown().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  });

  process.send?.({ type: 'ready', ...ready } satisfies ReadyMessage);
}

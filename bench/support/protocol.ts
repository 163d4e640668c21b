// The IPC messages between the benchmark's orchestrator and its server process.

/** Our server, ours behind a naive re-querying long-poll, or the in-memory floor (floor-server.ts). */
export type BenchMode = 'real' | 'naive' | 'floor';

export interface SeedRequest {
  type: 'seed';
  /** Ordinary users to create, each with one token. */
  users: number;
  /** Also create an admin user (for the broadcast). */
  admin: boolean;
}

export interface SeedResult {
  userIds: number[];
  tokens: string[];
  adminToken: string | null;
  ms: number;
}

export interface StatsRequest {
  type: 'stats';
  /** Collect garbage before reading the memory figures. */
  gc?: boolean;
  /** Start a new event-loop delay histogram after this reading (the next reading covers from here). */
  resetLoopDelay?: boolean;
}

export interface ServerStats {
  /** Queries the services have run since the process started (the store's onQuery hook). */
  queries: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** process.cpuUsage() in microseconds, cumulative. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** The garbage collector's pauses of the main thread since the process started (perf_hooks 'gc' entries), in milliseconds. */
  gcPauseMs: number;
  /** The main thread's time running code and waiting for events since the process started (perf_hooks' eventLoopUtilization), in milliseconds. */
  loopActiveMs: number;
  loopIdleMs: number;
  /** Event-loop delay (beyond the 10 ms sampling interval) since the last reset, in milliseconds. */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  hub: { users: number; subscribers: number; connections: number };
  /** Requests waiting in the naive long-poll (naive mode only; 0 otherwise). */
  naiveWaiting: number;
  /** Open TCP connections on the HTTP server. */
  connections: number;
  busHealthy: boolean;
}

export interface ShutdownRequest {
  type: 'shutdown';
}

/** Starts profiling the server (node:inspector), or stops and writes the CPU profile to `file` (.cpuprofile) and the heap profile beside it. */
export type ProfileRequest = { type: 'profile'; action: 'start' } | { type: 'profile'; action: 'stop'; file: string };

export type BenchRequest = (SeedRequest | StatsRequest | ShutdownRequest | ProfileRequest) & { id: number };

export type BenchReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export interface ReadyMessage {
  type: 'ready';
  port: number;
  mode: BenchMode;
  dialect: string;
  bus: 'redis' | 'in-memory';
  /** SQLite's PRAGMA synchronous in effect (null on Postgres). */
  sqliteSynchronous: string | null;
}

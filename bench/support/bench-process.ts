// The orchestrator's handle on one forked server process (bench-server.ts, or floor-server.ts for the floor).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compiledEntry } from './compiled-entry';
import type { BenchMode, BenchReply, BenchRequest, ReadyMessage, SeedResult, ServerStats } from './protocol';

const entryOf = (mode: BenchMode) => fileURLToPath(new URL(mode === 'floor' ? './floor-server.ts' : './bench-server.ts', import.meta.url));
/** The server runs from the repository's root, as `npm run start:prod` does. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };

type Outgoing = BenchRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

export class BenchProcess {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited = false;

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
    readonly ready: ReadyMessage,
  ) {
    child.on('message', (message: BenchReply) => {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(`${label}: ${message.error}`));
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      for (const waiting of this.pending.values()) {
        clearTimeout(waiting.timer);
        waiting.reject(new Error(`${label}: server process exited (code ${code}, signal ${signal})`));
      }
      this.pending.clear();
    });
  }

  /** Forks the server, bundled as production runs it (compiled-entry.ts), and resolves once it listens. */
  static async start(
    label: string,
    options: { mode: BenchMode; databaseUrl: string; redisUrl?: string },
    timeoutMs = 60_000,
  ): Promise<BenchProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_MODE: options.mode, DATABASE_URL: options.databaseUrl };
    delete env.REDIS_URL;
    if (options.redisUrl) env.REDIS_URL = options.redisUrl;
    env.LOG_LEVEL = process.env.BENCH_LOG_LEVEL || 'error';
    env.RATE_LIMITS = 'off';
    const child = fork(await compiledEntry(entryOf(options.mode)), [], {
      // BENCH_SERVER_NODE_OPTIONS adds flags for the server only (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
      execArgv: ['--enable-source-maps', '--expose-gc', ...(process.env.BENCH_SERVER_NODE_OPTIONS?.split(/\s+/).filter(Boolean) ?? [])],
      env,
      cwd: REPOSITORY_ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${label}: server not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      child.on('message', function onReady(message: { type?: string }) {
        if (message?.type !== 'ready') return;
        clearTimeout(timer);
        child.off('message', onReady);
        resolve(message as ReadyMessage);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${label}: server exited at start (code ${code}, signal ${signal})`));
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return new BenchProcess(label, child, ready);
  }

  get port(): number {
    return this.ready.port;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  seed(users: number, admin: boolean): Promise<SeedResult> {
    return this.request({ type: 'seed', users, admin }, 120_000) as Promise<SeedResult>;
  }

  stats(options: { gc?: boolean; resetLoopDelay?: boolean } = {}): Promise<ServerStats> {
    return this.request({ type: 'stats', ...options }, 30_000) as Promise<ServerStats>;
  }

  /** Starts profiling the server; `stopProfile` writes its CPU profile to `file` (.cpuprofile) and its heap profile beside it (.heapprofile). */
  startProfile(): Promise<void> {
    return this.request({ type: 'profile', action: 'start' }, 30_000).then(() => undefined);
  }

  stopProfile(file: string): Promise<void> {
    return this.request({ type: 'profile', action: 'stop', file }, 60_000).then(() => undefined);
  }

  /** Asks the server to close everything and exit; kills it when it does not within the deadline. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request({ type: 'shutdown' }, timeoutMs).catch(() => {});
    const timer = setTimeout(() => {
      if (!this.exited) this.child.kill('SIGKILL');
    }, timeoutMs);
    if (this.child.connected) this.child.disconnect();
    await exited;
    clearTimeout(timer);
  }

  /** Last resort (error paths): SIGKILL this one child. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private request(message: Outgoing, timeoutMs: number): Promise<unknown> {
    if (this.exited || !this.child.connected) return Promise.reject(new Error(`${this.label}: server is gone`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: no answer to ${message.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ ...message, id } as BenchRequest);
    });
  }
}

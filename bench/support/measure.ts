// Small pieces a benchmark needs: timing sequential samples, summarizing them, logging phases with a
// deadline, cleaning up what a run opened, describing the machine, and markdown tables.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const now = () => performance.now();

/** A benchmark setting from the environment: a whole number above 0, or `fallback` when unset or not one. */
export function envInt(name: string, fallback: number): number {
  const value = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Runs `work`, logging its start and duration; rejects when it takes longer than `ms`. */
export async function withDeadline<T>(name: string, ms: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`phase "${name}" exceeded its deadline of ${ms / 1000} s`)), ms);
  });
  const started = now();
  log(`${name} …`);
  try {
    const result = await Promise.race([work(), deadline]);
    log(`${name} done in ${((now() - started) / 1000).toFixed(1)} s`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Latency samples

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The middle value (the lower of the two middle ones for an even count): always one of `values`. */
export const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50);

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
}

export function summarize(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    samples: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    minMs: round(sorted[0] ?? Number.NaN),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
    meanMs: round(sorted.reduce((sum, v) => sum + v, 0) / (sorted.length || 1)),
  };
}

export interface SampleOptions {
  samples: number;
  /** Untimed runs first (caches, JIT, prepared plans). */
  warmUp: number;
  /**
   * Stop taking samples once this much time has been spent on them, if `minSamples` are taken
   * (for slow baselines); `Infinity` for exactly `samples`.
   */
  budgetMs?: number;
  minSamples?: number;
}

/** Runs `once(i)` sequentially — warm-up runs, then timed ones — and summarizes the timed ones. */
export async function sample(once: (i: number) => Promise<unknown>, options: SampleOptions): Promise<LatencySummary> {
  for (let i = 0; i < options.warmUp; i++) await once(i);
  const values: number[] = [];
  const started = now();
  const budget = options.budgetMs ?? Number.POSITIVE_INFINITY;
  const minSamples = options.minSamples ?? options.samples;
  for (let i = 0; i < options.samples; i++) {
    if (values.length >= minSamples && now() - started > budget) break;
    const at = now();
    await once(options.warmUp + i);
    values.push(now() - at);
  }
  return summarize(values);
}

export interface SampleCase {
  id: string;
  once: (i: number) => Promise<unknown>;
}

/**
 * Like `sample` for several cases at once, interleaved: warm-up runs of each case, then rounds in
 * which every case still sampling runs once. On a shared, noisy machine each case's samples then
 * cover the same stretch of time, so the ratios between cases are not skewed by the load changing
 * from one case to the next. A case stops early once its timed runs have taken `budgetMs` (with at
 * least `minSamples`).
 */
export async function sampleInterleaved(cases: SampleCase[], options: SampleOptions): Promise<Map<string, LatencySummary>> {
  for (const c of cases) for (let i = 0; i < options.warmUp; i++) await c.once(i);
  const values = new Map(cases.map((c) => [c.id, [] as number[]]));
  const spent = new Map(cases.map((c) => [c.id, 0]));
  const budget = options.budgetMs ?? Number.POSITIVE_INFINITY;
  const minSamples = options.minSamples ?? options.samples;
  for (let round = 0; round < options.samples; round++) {
    for (const c of cases) {
      const taken = values.get(c.id)!;
      if (taken.length >= minSamples && spent.get(c.id)! > budget) continue;
      const at = now();
      await c.once(options.warmUp + round);
      const ms = now() - at;
      taken.push(ms);
      spent.set(c.id, spent.get(c.id)! + ms);
    }
  }
  return new Map([...values].map(([id, taken]) => [id, summarize(taken)]));
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface JsonAnswer<T = unknown> {
  status: number;
  body: T;
}

/** GET `path` on 127.0.0.1:`port` with a token, over `agent`; resolves once the body is read and parsed. */
export function getJson<T = unknown>(agent: http.Agent, port: number, path: string, token: string, timeoutMs = 60_000): Promise<JsonAnswer<T>> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path, method: 'GET', agent, timeout: timeoutMs, headers: { Authorization: `Token ${token}` } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: response.statusCode ?? 0, body: body as T });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`GET ${path} timed out`)));
    request.on('error', reject);
    request.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Cleanup: what a run opens is registered here and closed in reverse order, also on a signal or
// when the watchdog fires.

export class Cleanups {
  private readonly entries: Array<{ name: string; run: () => Promise<void> | void }> = [];
  private done = false;

  /** Registers `run`; returns the function that unregisters it (once it has been done in order). */
  add(name: string, run: () => Promise<void> | void): () => void {
    const entry = { name, run };
    this.entries.push(entry);
    return () => {
      const index = this.entries.indexOf(entry);
      if (index >= 0) this.entries.splice(index, 1);
    };
  }

  async runAll(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const { name, run } of this.entries.reverse()) {
      try {
        await Promise.race([Promise.resolve(run()), sleep(30_000).then(() => Promise.reject(new Error('timed out')))]);
      } catch (error) {
        log(`cleanup "${name}" failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.entries.length = 0;
  }

  /** Cleans up and exits on SIGINT/SIGTERM, and after `maxMs` whatever the run is doing. */
  guard(maxMs: number): () => void {
    const watchdog = setTimeout(() => {
      log(`the whole run exceeded ${maxMs / 60_000} minutes: stopping`);
      void this.runAll().finally(() => process.exit(1));
    }, maxMs);
    watchdog.unref();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        log(`${signal}: cleaning up`);
        void this.runAll().finally(() => process.exit(130));
      });
    }
    return () => clearTimeout(watchdog);
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

export interface Machine {
  platform: string;
  release: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  totalMemGiB: number;
  node: string;
  /** os.loadavg() (1, 5, 15 minutes) when the run started: how busy the shared machine was. */
  loadAverageAtStart: number[];
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    loadAverageAtStart: os.loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

// ---------------------------------------------------------------------------------------------
// A run: its parts, its results, its exit

/** Runs one part of a benchmark; a failure is recorded in `failures` (and logged) instead of ending the run. */
export async function attempt<T>(failures: Record<string, string>, part: string, work: () => Promise<T>): Promise<T | null> {
  try {
    return await work();
  } catch (error) {
    failures[part] = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`${part} FAILED: ${failures[part]}`);
    return null;
  }
}

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/**
 * The name a benchmark's results are written under in bench/results/: BENCH_RESULTS_NAME when set
 * (a short trial run then leaves the recorded results alone), else the benchmark's own.
 */
export const resultsName = (own: string): string => process.env.BENCH_RESULTS_NAME || own;

/** Writes bench/results/<name>.json and <name>.md. */
export function writeResults(name: string, results: object, markdown: string): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(RESULTS_DIR, `${name}.md`), markdown);
}

/**
 * Runs a benchmark's `main` (its exit code) under the cleanups' guard: whatever happens, what the
 * run opened is closed, and the process exits with main's code (1 when it threw or ran out of time).
 */
export async function runBenchmark(main: () => Promise<number>, cleanups: Cleanups, maxMs: number): Promise<never> {
  const stopGuard = cleanups.guard(maxMs);
  let exitCode = 1;
  try {
    exitCode = await main();
  } catch (error) {
    log(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await cleanups.runAll();
    stopGuard();
  }
  process.exit(exitCode);
}

export interface CodeUnderTest {
  commit: string;
  /** Uncommitted changes to what is measured (server, db, contract), as `git status --porcelain` lists them. */
  uncommitted: string[];
}

/** The commit measured, and whether the working tree differed from it. */
export function codeUnderTest(): CodeUnderTest {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const uncommitted = git('status', '--porcelain', '--', 'server', 'db', 'contract');
  return { commit: git('rev-parse', '--short', 'HEAD') || 'unknown', uncommitted: uncommitted ? uncommitted.split('\n') : [] };
}

export const fmt = (n: number | undefined, digits = 1) =>
  n !== undefined && Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
export const count = (n: number) => n.toLocaleString('en-US');

/** A markdown table with padded columns (readable as plain text too). */
export function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

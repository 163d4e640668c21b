// Request rates of several cases (the real route, the bare one beside it…) measured with autocannon
// in interleaved rounds: every case once per round, so that each case's figures cover the same
// stretch of a noisy machine, and a share real ÷ bare is taken within each round before its median.
import autocannon from 'autocannon';
import { fmt, log, median } from './measure';

/** One request to load: a GET unless a method and body are given. */
export interface RateCase {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface RateFigure {
  /** requests per second of each timed round, in order */
  rounds: number[];
  medianRps: number;
  p50Ms: number;
  p99Ms: number;
  bytesPerAnswer: number;
  /** answers other than 2xx, and connection errors or timeouts, over all rounds */
  non2xx: number;
  errors: number;
}

export interface RateOptions {
  connections: number;
  secondsPerRound: number;
  rounds: number;
  warmUpSeconds: number;
  /** Names the run in the progress lines. */
  label: string;
}

export interface RateRun<Id extends string> {
  figures: Record<Id, RateFigure>;
  /** The median over rounds of real's rate ÷ floor's, taken within each round. */
  share(real: Id, floor: Id): number;
}

function load(target: RateCase, connections: number, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url: target.url, method: target.method ?? 'GET', headers: target.headers, body: target.body, connections, duration: seconds });
}

/** Loads every case once untimed (warm-up), then `rounds` times in turn. */
export async function measureRates<Id extends string>(cases: Record<Id, RateCase>, options: RateOptions): Promise<RateRun<Id>> {
  const ids = Object.keys(cases) as Id[];
  for (const id of ids) await load(cases[id], options.connections, options.warmUpSeconds);
  const runs = new Map<Id, autocannon.Result[]>(ids.map((id) => [id, []]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const id of ids) {
      const result = await load(cases[id], options.connections, options.secondsPerRound);
      runs.get(id)!.push(result);
      log(`${options.label} round ${round}/${options.rounds} ${id}: ${fmt(result.requests.average, 0)} req/s`);
    }
  }
  const figures = Object.fromEntries(ids.map((id) => [id, rateFigure(runs.get(id)!)])) as Record<Id, RateFigure>;
  const share = (real: Id, floor: Id) => median(runs.get(real)!.map((result, round) => result.requests.average / runs.get(floor)![round].requests.average));
  return { figures, share };
}

function rateFigure(results: autocannon.Result[]): RateFigure {
  const rounds = results.map((result) => result.requests.average);
  const middle = results[rounds.indexOf(median(rounds))] ?? results[0];
  const answers = results.reduce((sum, result) => sum + result.requests.total, 0);
  const bytes = results.reduce((sum, result) => sum + result.throughput.total, 0);
  return {
    rounds,
    medianRps: median(rounds),
    p50Ms: middle.latency.p50,
    p99Ms: middle.latency.p99,
    bytesPerAnswer: Math.round(bytes / Math.max(answers, 1)),
    non2xx: results.reduce((sum, result) => sum + result.non2xx, 0),
    errors: results.reduce((sum, result) => sum + result.errors + result.timeouts, 0),
  };
}

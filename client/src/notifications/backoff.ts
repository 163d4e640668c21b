/** How long to wait after failures: doubling from `initialMs` up to `maxMs`, with full jitter. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000 };

/**
 * Exponential backoff with full jitter (a random wait between zero and the current ceiling), so that
 * the clients of a restarted server do not all come back in the same instant.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The wait before the next attempt, counting one more failure. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** this.failures);
    this.failures++;
    return Math.round(ceiling * this.random());
  }

  reset(): void {
    this.failures = 0;
  }
}

/**
 * A `Retry-After` header's wait in ms (seconds or an HTTP date), within `maxMs`; undefined when
 * there is none or it makes no sense.
 */
export function retryAfterMs(header: string | null | undefined, maxMs: number, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const waitMs = /^\s*\d+\s*$/.test(header) ? Number(header) * 1000 : /[a-z]/i.test(header) ? Date.parse(header) - now : NaN;
  if (!Number.isFinite(waitMs)) return undefined;
  return Math.min(maxMs, Math.max(0, waitMs));
}

/** Waits `ms`, or less when `signal` aborts (it then resolves, it does not throw). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

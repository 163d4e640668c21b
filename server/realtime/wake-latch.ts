export type WaitOutcome = 'woken' | 'timeout' | 'aborted';

/**
 * Remembers a wake-up that came while nobody was waiting, so that the check-then-wait of a long
 * poll cannot miss a notification created between its database read and its wait. It is the hub's
 * subscriber itself (`wake`, `shutdown`): a waiting long-poll holds no wrapper around it.
 */
export class WakeLatch {
  private pending = false;
  private aborted = false;
  private settle: ((outcome: WaitOutcome) => void) | undefined;
  /** Why the wait may not go on: its connection's token no longer holds (see refuse). */
  refusal: unknown;

  /** `recheck` says whether the connection may still wait, when the user's sessions change (see sessionsChanged). */
  constructor(private readonly recheck?: () => Promise<void>) {}

  /** Ends a wait in progress as aborted (client gone, server shutting down); a function of its own, to be passed on. */
  readonly abort = () => this.finish('aborted');

  /** A wake-up: ends the wait in progress, or is remembered for the next one. */
  wake(): void {
    this.finish('woken');
  }

  /** The server is shutting down: as `abort`. */
  shutdown(): void {
    this.finish('aborted');
  }

  /** The user's sessions changed: a wait whose token no longer holds ends, failing with the refusal. */
  sessionsChanged(): void {
    this.recheck?.().catch((refusal: unknown) => {
      this.refusal = refusal;
      this.finish('aborted');
    });
  }

  /** Whether `abort` has been called: every later wait ends at once. */
  get wasAborted(): boolean {
    return this.aborted;
  }

  /** Resolves at the next wake-up (at once if one is pending), or after `timeoutMs`, or on abort. */
  next(timeoutMs: number): Promise<WaitOutcome> {
    if (this.aborted) return Promise.resolve('aborted');
    if (this.pending) {
      this.pending = false;
      return Promise.resolve('woken');
    }
    if (timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.finish('timeout'), timeoutMs);
      this.settle = (outcome) => {
        clearTimeout(timer);
        this.settle = undefined;
        resolve(outcome);
      };
    });
  }

  private finish(outcome: WaitOutcome): void {
    if (outcome === 'aborted') this.aborted = true;
    if (this.settle) this.settle(outcome);
    else if (outcome === 'woken') this.pending = true;
  }
}

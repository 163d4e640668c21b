interface Pending<Request, Result> {
  request: Request;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers the requests made during one turn of the event loop and serves them with one call of
 * `run`, which answers them in order. When a broadcast wakes ten thousand waiting clients, their ten
 * thousand reads become a few batched queries instead of ten thousand, and a synchronous driver
 * (SQLite) no longer holds the event loop for all of them in one go.
 */
export class TickBatcher<Request, Result> {
  private queue: Array<Pending<Request, Result>> = [];

  constructor(
    private readonly run: (requests: Request[]) => Promise<Result[]>,
    private readonly maxBatch: number,
  ) {}

  add(request: Request): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const queued = this.queue;
    this.queue = [];
    for (let i = 0; i < queued.length; i += this.maxBatch) {
      // Let other I/O in between batches: a synchronous driver would otherwise run them back to back.
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      const batch = queued.slice(i, i + this.maxBatch);
      try {
        const results = await this.run(batch.map((pending) => pending.request));
        batch.forEach((pending, index) => pending.resolve(results[index]));
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
  }
}

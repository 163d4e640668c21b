import type { Logger } from 'pino';

/**
 * A sweep the process runs every `everyMs` once started (server/main.ts starts them; tests call the
 * sweep by hand). The timer never keeps the process alive, and a failed run is logged and tried
 * again next time.
 */
export class PeriodicJob {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly name: string,
    private readonly everyMs: number,
    private readonly run: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.run().catch((error) => this.logger.error({ err: error }, `${this.name} failed`));
    }, this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

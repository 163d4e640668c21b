import type { Store } from '../../db/open-database';
import type { InstanceBus } from '../realtime/bus';

export interface Health {
  /** The database answered a trivial query within the time allowed. */
  databaseAnswers: boolean;
  /** The bus reaches the other instances (always true for the in-process bus). */
  busHealthy: boolean;
}

/** How long the database may take to answer before this instance counts as unable to serve. */
const DATABASE_TIMEOUT_MS = 1000;

export class HealthService {
  constructor(
    private readonly store: Store,
    private readonly bus: InstanceBus,
    private readonly databaseTimeoutMs = DATABASE_TIMEOUT_MS,
  ) {}

  async check(): Promise<Health> {
    return { databaseAnswers: await this.databaseAnswers(), busHealthy: this.bus.healthy };
  }

  private async databaseAnswers(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.databaseTimeoutMs);
    });
    const answered = this.store.ping().then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}

import { and, eq, isNull, lte } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Store } from '../../db/open-database';
import { PeriodicJob } from '../jobs/periodic-job';
import type { NotificationsService } from '../notifications/notifications.service';

export interface LongTimerOptions {
  /** A timer running this long gets its warning. */
  afterMs: number;
  /** How often running timers are looked at. */
  everyMs: number;
}

export const LONG_TIMER_DEFAULTS: LongTimerOptions = { afterMs: 8 * 3600_000, everyMs: 60_000 };

/**
 * Warns the user of a timer left running for 8 hours, once per entry, whichever instance sees it
 * first: each entry is claimed by one conditional UPDATE (warned_at set where it was null), so two
 * instances sweeping at once cannot both claim it. A warning whose notification could not be
 * written gives its claim back and is tried again on the next sweep.
 */
export class LongTimerWarnings {
  /** Started by the process (server/main.ts); tests sweep by hand. */
  readonly job: PeriodicJob;

  constructor(
    private readonly store: Store,
    private readonly notifications: NotificationsService,
    private readonly logger: Logger,
    private readonly options: LongTimerOptions = LONG_TIMER_DEFAULTS,
  ) {
    this.job = new PeriodicJob('long timer sweep', options.everyMs, () => this.sweep(), logger);
  }

  /** Claims and warns every timer running longer than the limit at `now`; returns how many. */
  async sweep(now = new Date()): Promise<number> {
    const { db, t } = this.store;
    const e = t.timeEntries;
    const claimed = await db
      .update(e)
      .set({ warnedAt: now })
      .where(and(isNull(e.endTime), isNull(e.warnedAt), lte(e.startTime, new Date(now.getTime() - this.options.afterMs))))
      .returning({ id: e.id, userId: e.userId, title: e.title });
    for (const entry of claimed) {
      const hours = Math.round(this.options.afterMs / 3600_000);
      try {
        await this.notifications.notify([entry.userId], { type: 'WARNING', message: `Timer running for ${hours} hours: ${entry.title}` });
      } catch (error) {
        this.logger.error({ err: error, timeEntryId: entry.id }, 'long timer warning not sent; will retry');
        await db.update(e).set({ warnedAt: null }).where(and(eq(e.id, entry.id), eq(e.warnedAt, now)));
      }
    }
    return claimed.length;
  }
}

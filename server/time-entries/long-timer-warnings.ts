import { and, isNull, lte } from 'drizzle-orm';
import type { Logger } from 'pino';
import { insertsOf, rowsOf, type Store } from '../../db/open-database';
import { PeriodicJob } from '../jobs/periodic-job';
import { newNotification, type NotificationsService } from '../notifications/notifications.service';

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
 * instances sweeping at once cannot both claim it. The claims and their warnings are written in one
 * transaction: a sweep that fails, or a process that dies, between the two leaves neither, and the
 * next sweep tries again (a claim written alone was a warning never sent).
 */
export class LongTimerWarnings {
  /** Started by the process (server/main.ts); tests sweep by hand. */
  readonly job: PeriodicJob;

  constructor(
    private readonly store: Store,
    private readonly notifications: NotificationsService,
    logger: Logger,
    private readonly options: LongTimerOptions = LONG_TIMER_DEFAULTS,
  ) {
    this.job = new PeriodicJob('long timer sweep', options.everyMs, () => this.sweep(), logger);
  }

  /** Claims and warns every timer running longer than the limit at `now`; returns how many. */
  async sweep(now = new Date()): Promise<number> {
    const { t } = this.store;
    const e = t.timeEntries;
    const startedBy = new Date(now.getTime() - this.options.afterMs);
    const hours = Math.round(this.options.afterMs / 3600_000);
    const createdAt = new Date();
    const warningFor = (entry: { userId: number; title: string }) =>
      newNotification(entry.userId, { type: 'WARNING', message: `Timer running for ${hours} hours: ${entry.title}` }, createdAt);
    const warnings = await this.store.transaction(function* (tx) {
      const claimed = yield* rowsOf(
        tx
          .update(e)
          .set({ warnedAt: now })
          .where(and(isNull(e.endTime), isNull(e.warnedAt), lte(e.startTime, startedBy)))
          .returning({ userId: e.userId, title: e.title }),
      );
      const warnings = claimed.map(warningFor);
      yield* insertsOf(tx, t.notifications, warnings);
      return warnings;
    });
    // Committed: should the wake-up fail, their clients still find them on a later look (DeliveryClaims' quietMs).
    await this.notifications.written(warnings);
    return warnings.length;
  }
}

import { createHash } from 'node:crypto';
import { and, eq, isNull, lt } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Store } from '../../db/open-database';
import { rowsAffected } from '../../db/rows-affected';
import { Conflict } from '../errors';
import { PeriodicJob } from '../jobs/periodic-job';

const RETENTION_MS = 24 * 60 * 60 * 1000;
const PURGE_EVERY_MS = 60 * 60 * 1000;
/**
 * A claim still without its answer this long after it was made belongs to a request whose process
 * died (a request's work ends long before: its deadline answers at 30 s). A retry of the same request
 * takes it over instead of being told, for the rest of the 24 hours, that it is still in progress.
 */
export const ABANDONED_AFTER_MS = 10 * 60 * 1000;

/**
 * Makes a retried request safe: the first request with a key runs and its answer is kept for 24
 * hours; a retry with the same key and the same request gets that answer without running again.
 * The key is claimed with one INSERT … ON CONFLICT DO NOTHING, so two concurrent retries cannot
 * both run. A claim whose request never answered (its process died) is taken over by a retry after
 * ABANDONED_AFTER_MS: if that request had done its work before dying, the retry does it again.
 */
export class IdempotencyService {
  /** Purges expired keys every hour once started (server/main.ts): an expired key is otherwise gone only when its admin reuses it. */
  readonly purging: PeriodicJob;

  constructor(
    private readonly store: Store,
    logger: Logger,
  ) {
    this.purging = new PeriodicJob('idempotency key purge', PURGE_EVERY_MS, () => this.purgeExpired(), logger);
  }

  /** Deletes every key older than the 24 hours it is kept; returns how many. */
  async purgeExpired(now = new Date()): Promise<number> {
    const { db, t } = this.store;
    const purged = await db.delete(t.idempotencyKeys).where(lt(t.idempotencyKeys.createdAt, new Date(now.getTime() - RETENTION_MS)));
    return rowsAffected(purged);
  }

  async once<T>(userId: number, key: string, request: unknown, work: () => Promise<T>): Promise<T> {
    const { db, t } = this.store;
    const k = t.idempotencyKeys;
    const requestDigest = createHash('sha256').update(JSON.stringify(request)).digest('hex');
    const mine = and(eq(k.userId, userId), eq(k.key, key));
    await db.delete(k).where(and(mine, lt(k.createdAt, new Date(Date.now() - RETENTION_MS))));

    const claimed = await db
      .insert(k)
      .values({ userId, key, requestDigest, response: null, createdAt: new Date() })
      .onConflictDoNothing()
      .returning();
    if (claimed.length === 0) {
      if (await this.tookOverAbandoned(userId, key, requestDigest)) return this.once(userId, key, request, work);
      return this.replay<T>(userId, key, requestDigest);
    }

    let result: T;
    try {
      result = await work();
    } catch (error) {
      await db.delete(k).where(mine);
      throw error;
    }
    await db.update(k).set({ response: JSON.stringify(result) }).where(mine);
    return result;
  }

  /**
   * Frees the key when its claim is the same request's, abandoned (see ABANDONED_AFTER_MS); says
   * whether it did. One conditional DELETE: of two retries at once, one frees it and claims it again.
   */
  private async tookOverAbandoned(userId: number, key: string, requestDigest: string): Promise<boolean> {
    const { db, t } = this.store;
    const k = t.idempotencyKeys;
    const freed = await db
      .delete(k)
      .where(
        and(
          eq(k.userId, userId),
          eq(k.key, key),
          eq(k.requestDigest, requestDigest),
          isNull(k.response),
          lt(k.createdAt, new Date(Date.now() - ABANDONED_AFTER_MS)),
        ),
      );
    return rowsAffected(freed) > 0;
  }

  private async replay<T>(userId: number, key: string, requestDigest: string): Promise<T> {
    const { db, t } = this.store;
    const k = t.idempotencyKeys;
    const [earlier] = await db.select().from(k).where(and(eq(k.userId, userId), eq(k.key, key)));
    // Gone again means the first request failed and released its claim a moment ago.
    if (!earlier || earlier.response === null) {
      throw new Conflict('A request with this Idempotency-Key is still in progress.');
    }
    if (earlier.requestDigest !== requestDigest) {
      throw new Conflict('This Idempotency-Key was used for a different request.');
    }
    return JSON.parse(earlier.response) as T;
  }
}

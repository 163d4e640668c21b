import { createHash } from 'node:crypto';
import { and, eq, isNull, lt } from 'drizzle-orm';
import type { Logger } from 'pino';
import { rowsOf, type Db, type Store, type Transaction } from '../../db/open-database';
import { rowsAffected } from '../../db/rows-affected';
import { Conflict } from '../errors';
import { PeriodicJob } from '../jobs/periodic-job';

const RETENTION_MS = 24 * 60 * 60 * 1000;
const PURGE_EVERY_MS = 60 * 60 * 1000;
/**
 * A claim without an answer is an earlier version's (this one writes the claim and the answer in one
 * transaction): that version kept the answer after the work, in a write of its own, so its request
 * may still be running there (a rolling deploy), or have died. Past this age it has died (a request is
 * answered within its 30 s deadline), and a retry of the same request takes the key over, as that
 * version let it; younger, the retry is told that the request is still in progress.
 */
export const LEGACY_CLAIM_ABANDONED_AFTER_MS = 10 * 60 * 1000;

/**
 * Makes a retried request safe: the first request with a key runs and its answer is kept for 24
 * hours; a retry with the same key and the same request gets that answer without running again.
 * The key, the request's writes and its answer are written in one transaction: a request that
 * fails, or whose process dies, leaves none of them, and its retry runs as if it were the first;
 * one that committed left its answer, which every retry gets. Of two at once, the second's claim of
 * the key waits for the first's transaction (Postgres: the key's unique index; SQLite: one writer)
 * and then finds the first's answer, or runs if the first failed.
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

  /**
   * The answer of the request under `key`: the one kept, or what `work` (the statements of the
   * request's writes, see Store.transaction) returns, committed with the key. `committed` runs after
   * the commit of a request that ran (not of a replay): what must follow the writes, such as
   * waking the clients of what was written.
   */
  async once<T>(userId: number, key: string, request: unknown, work: (tx: Db) => Transaction<T>, committed: (answer: T) => Promise<void>): Promise<T> {
    const { db, t } = this.store;
    const k = t.idempotencyKeys;
    const requestDigest = createHash('sha256').update(JSON.stringify(request)).digest('hex');
    const mine = and(eq(k.userId, userId), eq(k.key, key));
    await db.delete(k).where(and(mine, lt(k.createdAt, new Date(Date.now() - RETENTION_MS))));

    const { answer, ran } = await this.store.transaction(function* (tx) {
      const claimed = yield* rowsOf(
        tx.insert(k).values({ userId, key, requestDigest, response: null, createdAt: new Date() }).onConflictDoNothing().returning({ key: k.key }),
      );
      if (claimed.length === 0) {
        const earlierClaim = () => rowsOf(tx.select({ requestDigest: k.requestDigest, response: k.response, createdAt: k.createdAt }).from(k).where(mine));
        const [earlier] = yield* earlierClaim();
        if (!abandonedLegacyClaim(earlier, requestDigest)) return { answer: replayOf<T>(earlier, requestDigest), ran: false };
        // Of two retries taking it over at once, the second's UPDATE waits for the first's commit
        // (Postgres: the row's lock) and then finds it answered: it replays that answer.
        const tookOver = yield* rowsOf(tx.update(k).set({ createdAt: new Date() }).where(and(mine, isNull(k.response))).returning({ key: k.key }));
        if (tookOver.length === 0) return { answer: replayOf<T>((yield* earlierClaim())[0], requestDigest), ran: false };
      }
      const answer = yield* work(tx);
      yield* rowsOf(tx.update(k).set({ response: JSON.stringify(answer) }).where(mine).returning({ key: k.key }));
      return { answer, ran: true };
    });
    if (ran) await committed(answer);
    return answer;
  }
}

/** Whether `earlier` is an earlier version's claim of this very request, without an answer and old enough to be taken over (see LEGACY_CLAIM_ABANDONED_AFTER_MS). */
function abandonedLegacyClaim(earlier: { requestDigest: string; response: string | null; createdAt: Date } | undefined, requestDigest: string): boolean {
  return (
    earlier?.response === null &&
    earlier.requestDigest === requestDigest &&
    earlier.createdAt.getTime() < Date.now() - LEGACY_CLAIM_ABANDONED_AFTER_MS
  );
}

/** The answer kept under a key; a Conflict for another request's key, or one gone meanwhile (purged: the retry tries again). */
function replayOf<T>(earlier: { requestDigest: string; response: string | null } | undefined, requestDigest: string): T {
  if (!earlier?.response) throw new Conflict('A request with this Idempotency-Key is still in progress.');
  if (earlier.requestDigest !== requestDigest) throw new Conflict('This Idempotency-Key was used for a different request.');
  return JSON.parse(earlier.response) as T;
}

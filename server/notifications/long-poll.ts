import { LONG_POLL_MAX_NOTIFICATIONS } from '../../contract/notifications';
import type { DeliveryHub } from '../realtime/delivery-hub';
import { WakeLatch } from '../realtime/wake-latch';
import type { DeliveryClaims } from './delivery-claims';
import type { NotificationRow } from './notifications.service';

export type LongPollResult =
  | { status: 'immediate' | 'new_notification'; notifications: NotificationRow[] }
  | { status: 'timeout'; notifications: [] };

/**
 * How a poll learns that its client has gone: given a listener, it calls it once when the client
 * goes away (at once if it has already), and returns a function that stops watching. (Lighter than
 * an AbortSignal, which costs a waiting poll 1 KB of heap.)
 */
export type WhenGone = (listener: () => void) => () => void;

/**
 * Long polls: the undelivered notifications at once if there are any, else the first that arrive,
 * else nothing after the timeout. What a poll returns stays claimed (see DeliveryClaims) until the
 * caller confirms or abandons it, so a client that re-polls the moment it has an answer does not
 * get the same notifications again while their delivered_at is being written.
 */
export class LongPoll {
  constructor(
    private readonly claims: DeliveryClaims,
    private readonly hub: DeliveryHub,
  ) {}

  /**
   * `stillSignedIn` rejects when the token the poll came with no longer holds (asked when the user's
   * sessions change): the wait then ends with that refusal, not with what comes after the logout.
   */
  async wait(userId: number, timeoutMs: number, whenGone: WhenGone, stillSignedIn?: () => Promise<void>): Promise<LongPollResult> {
    const release = this.hub.acquireConnection(userId);
    const latch = new WakeLatch(stillSignedIn);
    // Subscribed before the first read: a notification created in between still wakes the latch.
    const unsubscribe = this.hub.subscribe(userId, latch);
    const stopWatching = whenGone(latch.abort);
    try {
      if (latch.wasAborted) return { status: 'timeout', notifications: [] };
      const waiting = await this.take(userId);
      if (waiting.length > 0) return { status: 'immediate', notifications: waiting };
      const deadline = Date.now() + timeoutMs;
      while ((await latch.next(deadline - Date.now())) === 'woken') {
        const arrived = await this.take(userId);
        // Woken for nothing (another connection took them): keep waiting out the time left.
        if (arrived.length > 0) return { status: 'new_notification', notifications: arrived };
      }
      if (latch.refusal) throw latch.refusal;
      return { status: 'timeout', notifications: [] };
    } finally {
      stopWatching();
      unsubscribe();
      release();
    }
  }

  private take(userId: number): Promise<NotificationRow[]> {
    return this.claims.take(userId, LONG_POLL_MAX_NOTIFICATIONS);
  }
}

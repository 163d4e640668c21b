import { LONG_POLL_MAX_NOTIFICATIONS } from '../../contract/notifications';
import type { DeliveryHub } from '../realtime/delivery-hub';
import { WakeLatch } from '../realtime/wake-latch';
import type { NotificationRow, NotificationsService } from './notifications.service';

export type LongPollResult =
  | { status: 'immediate' | 'new_notification'; notifications: NotificationRow[] }
  | { status: 'timeout'; notifications: [] };

/**
 * One long poll: the undelivered notifications at once if there are any, else the first that
 * arrive, else nothing after `timeoutMs`. The caller marks what it returns delivered once the
 * answer has reached the client.
 */
export class LongPoll {
  constructor(
    private readonly notifications: NotificationsService,
    private readonly hub: DeliveryHub,
  ) {}

  async wait(userId: number, timeoutMs: number, signal: AbortSignal): Promise<LongPollResult> {
    const release = this.hub.acquireConnection(userId);
    const latch = new WakeLatch();
    // Subscribed before the first read: a notification created in between still wakes the latch.
    const unsubscribe = this.hub.subscribe(userId, { wake: latch.wake, shutdown: latch.abort });
    signal.addEventListener('abort', latch.abort, { once: true });
    try {
      const waiting = await this.read(userId);
      if (waiting.length > 0) return { status: 'immediate', notifications: waiting };
      const deadline = Date.now() + timeoutMs;
      while ((await latch.next(deadline - Date.now())) === 'woken') {
        const arrived = await this.read(userId);
        // Woken for nothing (a concurrent poll took them): keep waiting out the time left.
        if (arrived.length > 0) return { status: 'new_notification', notifications: arrived };
      }
      return { status: 'timeout', notifications: [] };
    } finally {
      signal.removeEventListener('abort', latch.abort);
      unsubscribe();
      release();
    }
  }

  private read(userId: number): Promise<NotificationRow[]> {
    return this.notifications.undelivered(userId, LONG_POLL_MAX_NOTIFICATIONS);
  }
}

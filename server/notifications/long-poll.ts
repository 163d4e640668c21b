import { LONG_POLL_MAX_NOTIFICATIONS } from '../../contract/notifications';
import type { DeliveryHub } from '../realtime/delivery-hub';
import { WakeLatch } from '../realtime/wake-latch';
import type { NotificationRow, NotificationsService } from './notifications.service';

export type LongPollResult =
  | { status: 'immediate' | 'new_notification'; notifications: NotificationRow[] }
  | { status: 'timeout'; notifications: [] };

/**
 * Long polls: the undelivered notifications at once if there are any, else the first that arrive,
 * else nothing after the timeout. What a poll returns is "in flight" until the caller reports the
 * answer written (`confirm`: marked delivered) or lost (`abandon`: offered again). Polls leave
 * in-flight notifications out, so a client that re-polls the moment it has an answer does not get
 * the same notifications again while their delivered_at is being written.
 */
export class LongPoll {
  private readonly inFlight = new Map<number, Set<string>>();

  constructor(
    private readonly notifications: NotificationsService,
    private readonly hub: DeliveryHub,
  ) {}

  async wait(userId: number, timeoutMs: number, signal: AbortSignal): Promise<LongPollResult> {
    const release = this.hub.acquireConnection(userId);
    const latch = new WakeLatch();
    // Subscribed before the first read: a notification created in between still wakes the latch.
    const unsubscribe = this.hub.subscribe(userId, { wake: latch.wake, shutdown: latch.abort });
    if (signal.aborted) latch.abort();
    else signal.addEventListener('abort', latch.abort, { once: true });
    try {
      if (signal.aborted) return { status: 'timeout', notifications: [] };
      const waiting = await this.take(userId);
      if (waiting.length > 0) return { status: 'immediate', notifications: waiting };
      const deadline = Date.now() + timeoutMs;
      while ((await latch.next(deadline - Date.now())) === 'woken') {
        const arrived = await this.take(userId);
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

  /** The answer carrying `ids` reached the socket: mark them delivered. */
  async confirm(userId: number, ids: string[]): Promise<void> {
    try {
      await this.notifications.confirmDelivery(userId, ids);
    } finally {
      this.land(userId, ids);
    }
  }

  /** The answer carrying `ids` never reached the client: offer them to the user's other waiting polls. */
  abandon(userId: number, ids: string[]): void {
    this.land(userId, ids);
    this.hub.wake([userId]);
  }

  /** Reads the undelivered that no other answer is carrying, and marks them in flight. */
  private async take(userId: number): Promise<NotificationRow[]> {
    const flyingBefore = [...(this.inFlight.get(userId) ?? [])];
    const rows = await this.notifications.undelivered(userId, LONG_POLL_MAX_NOTIFICATIONS, flyingBefore);
    // Another poll of this user may have taken some of them while this one was reading.
    const flying = this.inFlight.get(userId) ?? new Set<string>();
    const mine = rows.filter((row) => !flying.has(row.id));
    if (mine.length === 0) return [];
    for (const row of mine) flying.add(row.id);
    this.inFlight.set(userId, flying);
    return mine;
  }

  private land(userId: number, ids: string[]): void {
    const flying = this.inFlight.get(userId);
    if (!flying) return;
    for (const id of ids) flying.delete(id);
    if (flying.size === 0) this.inFlight.delete(userId);
  }
}

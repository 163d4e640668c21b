import type { DeliveryHub } from '../realtime/delivery-hub';
import type { NotificationRow, NotificationsService } from './notifications.service';

/**
 * What this instance's long-polls and streams are carrying to each user right now. A connection
 * `take`s undelivered notifications, which claims them until it reports them written (`confirm`:
 * marked delivered) or lost (`abandon`: offered again). The user's other connections leave
 * claimed notifications out, so a notification goes to one connection of the user, not to each
 * of them — and a connection opened while another one's delivered_at is being written does not
 * send it again. Across instances claims are not shared: there, delivery is at-least-once.
 */
export class DeliveryClaims {
  private readonly claimed = new Map<number, Set<string>>();
  /** Reads of undelivered notifications in flight, per user. */
  private readonly readsInFlight = new Map<number, number>();
  /** What was delivered while reads of the user were in flight: those reads must leave it out. */
  private readonly deliveredDuringReads = new Map<number, Set<string>>();

  constructor(
    private readonly notifications: NotificationsService,
    private readonly hub: DeliveryHub,
  ) {}

  /** Up to `limit` of the user's undelivered notifications, oldest first, that no connection has claimed. */
  async take(userId: number, limit: number): Promise<NotificationRow[]> {
    const claimedBefore = [...(this.claimed.get(userId) ?? [])];
    this.readsInFlight.set(userId, (this.readsInFlight.get(userId) ?? 0) + 1);
    try {
      const rows = await this.notifications.undelivered(userId, limit, claimedBefore);
      // Another connection of this user may have claimed some of them while this one was reading,
      // or even delivered them: its claim is gone then, but this read may predate its delivered_at.
      const claimed = this.claimed.get(userId) ?? new Set<string>();
      const delivered = this.deliveredDuringReads.get(userId);
      const mine = rows.filter((row) => !claimed.has(row.id) && !delivered?.has(row.id));
      if (mine.length === 0) return [];
      for (const row of mine) claimed.add(row.id);
      this.claimed.set(userId, claimed);
      return mine;
    } finally {
      this.readFinished(userId);
    }
  }

  /** The claimed `ids` reached the client: mark them delivered, then let the claim go. */
  async confirm(userId: number, ids: string[]): Promise<void> {
    try {
      await this.notifications.confirmDelivery(userId, ids);
      // A read of this user still in flight may have been answered before delivered_at was set.
      if (this.readsInFlight.has(userId)) {
        const delivered = this.deliveredDuringReads.get(userId) ?? new Set<string>();
        for (const id of ids) delivered.add(id);
        this.deliveredDuringReads.set(userId, delivered);
      }
    } finally {
      // Released only once delivered_at is written (or failed to be: then they are offered again).
      this.release(userId, ids);
    }
  }

  /** The claimed `ids` never reached the client: offer them to the user's other connections. */
  abandon(userId: number, ids: string[]): void {
    this.release(userId, ids);
    this.hub.wake([userId]);
  }

  /** How many notifications are claimed, for all users (tests check that nothing stays claimed). */
  size(): number {
    let total = 0;
    for (const ids of this.claimed.values()) total += ids.size;
    return total;
  }

  private readFinished(userId: number): void {
    const reads = (this.readsInFlight.get(userId) ?? 1) - 1;
    if (reads > 0) return void this.readsInFlight.set(userId, reads);
    this.readsInFlight.delete(userId);
    this.deliveredDuringReads.delete(userId);
  }

  private release(userId: number, ids: string[]): void {
    const claimed = this.claimed.get(userId);
    if (!claimed) return;
    for (const id of ids) claimed.delete(id);
    if (claimed.size === 0) this.claimed.delete(userId);
  }
}

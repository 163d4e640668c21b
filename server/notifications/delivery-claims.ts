import { LRUCache } from 'lru-cache';
import type { Wakeup } from '../realtime/bus';
import type { DeliveryHub } from '../realtime/delivery-hub';
import type { NotificationRow, NotificationsService } from './notifications.service';

export interface DeliveryClaimsOptions {
  /** How long a user counts as quiet without a wake-up (see DeliveryClaims); 0: never. */
  quietMs: number;
}

/** What a read leaves out when the user has nothing claimed (one array for all of them). */
const NONE_CLAIMED: readonly string[] = Object.freeze([]);

/** At most this many quiet users are remembered (the least recently marked are forgotten first: they are read again). */
const MAX_QUIET_USERS = 200_000;

/**
 * How long after a failed delivery mark its notifications are offered to the user's connections
 * again: not at once, so that a database refusing the marks is not asked again in a loop.
 */
const OFFER_AGAIN_AFTER_FAILED_MARK_MS = 1000;

/**
 * What this instance's long-polls and streams are carrying to each user right now. A connection
 * `take`s undelivered notifications, which claims them until it reports them written (`confirm`:
 * marked delivered) or lost (`abandon`: offered again). The user's other connections leave
 * claimed notifications out, so a notification goes to one connection of the user, not to each
 * of them — and a connection opened while another one's delivered_at is being written does not
 * send it again. Across instances claims are not shared: there, delivery is at-least-once.
 *
 * It also knows which users are quiet: a read that found everything a user had undelivered (fewer
 * than its limit), with no wake-up for them while it ran, leaves nothing unclaimed, and until the
 * next wake-up for them nothing new can have come (every notification is announced on the bus,
 * which wakes every instance; a claim given back wakes the user too). A take for a quiet user asks
 * the database nothing: the re-poll that follows each answer is free, which after a broadcast to
 * thousands is thousands of queries. Only while the hub is reliable (the bus healthy; a bus that
 * may have missed a message cannot vouch for silence, and its recovery wakes everyone), and for
 * `quietMs` at most, which bounds how long a notification made without an announcement (a lost
 * Redis message, a row written by hand) can wait for its user's next wake-up.
 */
export class DeliveryClaims {
  private readonly claimed = new Map<number, Set<string>>();
  /** Reads of undelivered notifications in flight, per user. */
  private readonly readsInFlight = new Map<number, number>();
  /** What was delivered while reads of the user were in flight: those reads must leave it out. */
  private readonly deliveredDuringReads = new Map<number, Set<string>>();
  /** Users with nothing undelivered that no connection has claimed, as far as the wake-ups tell. */
  private readonly quiet: LRUCache<number, true> | undefined;
  /** Users woken while a read of theirs was in flight: such a read cannot tell that they are quiet. */
  private readonly wokenDuringReads = new Set<number>();
  /** Users whose connections will be woken in a moment, after a failed delivery mark (one wake-up for all of a moment's failures). */
  private readonly offeredAgainSoon = new Set<number>();

  constructor(
    private readonly notifications: NotificationsService,
    private readonly hub: DeliveryHub,
    options: DeliveryClaimsOptions,
  ) {
    this.quiet = options.quietMs > 0 ? new LRUCache({ max: MAX_QUIET_USERS, ttl: options.quietMs }) : undefined;
    hub.onWake((wakeup) => this.woken(wakeup));
  }

  /** Up to `limit` of the user's undelivered notifications, oldest first, that no connection has claimed. */
  async take(userId: number, limit: number): Promise<NotificationRow[]> {
    if (this.quiet?.has(userId) && this.hub.reliable) return [];
    const claimedNow = this.claimed.get(userId);
    const claimedBefore = claimedNow ? [...claimedNow] : NONE_CLAIMED;
    this.readsInFlight.set(userId, (this.readsInFlight.get(userId) ?? 0) + 1);
    try {
      // One more than asked for: fewer than that means the read found all there was.
      const read = await this.notifications.undelivered(userId, limit + 1, claimedBefore);
      if (read.length <= limit) this.quietUnlessWoken(userId);
      const rows = read.length > limit ? read.slice(0, limit) : read;
      // Another connection of this user may have claimed some of them while this one was reading,
      // or even delivered them: its claim is gone then, but this read may predate its delivered_at.
      const claimed = this.claimed.get(userId);
      const delivered = this.deliveredDuringReads.get(userId);
      const mine = claimed || delivered ? rows.filter((row) => !claimed?.has(row.id) && !delivered?.has(row.id)) : rows;
      if (mine.length === 0) return [];
      const claims = claimed ?? new Set<string>();
      for (const row of mine) claims.add(row.id);
      this.claimed.set(userId, claims);
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
    } catch (error) {
      // Still undelivered, and offered again on the next read: the user is not quiet, and a read in
      // flight, which left them out as claimed, cannot say that they are. A stream reads only when
      // woken: it is woken in a moment, to send them again and mark them then.
      this.woken({ userIds: [userId] });
      this.offerAgainSoon(userId);
      throw error;
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

  /** Everything the user had is claimed now: quiet, unless a wake-up came while the read ran. */
  private quietUnlessWoken(userId: number): void {
    if (!this.wokenDuringReads.has(userId) && this.hub.reliable) this.quiet?.set(userId, true);
  }

  /** A wake-up (before the hub's subscribers hear of it): the users it names may have something new. */
  private woken(wakeup: Wakeup): void {
    const userIds = 'all' in wakeup ? [...this.readsInFlight.keys()] : wakeup.userIds;
    if ('all' in wakeup) this.quiet?.clear();
    for (const userId of userIds) {
      this.quiet?.delete(userId);
      if (this.readsInFlight.has(userId)) this.wokenDuringReads.add(userId);
    }
  }

  private offerAgainSoon(userId: number): void {
    if (this.offeredAgainSoon.has(userId)) return;
    this.offeredAgainSoon.add(userId);
    setTimeout(() => {
      this.offeredAgainSoon.delete(userId);
      this.hub.wake([userId]);
    }, OFFER_AGAIN_AFTER_FAILED_MARK_MS).unref();
  }

  private readFinished(userId: number): void {
    const reads = (this.readsInFlight.get(userId) ?? 1) - 1;
    if (reads > 0) return void this.readsInFlight.set(userId, reads);
    this.readsInFlight.delete(userId);
    this.deliveredDuringReads.delete(userId);
    this.wokenDuringReads.delete(userId);
  }

  private release(userId: number, ids: string[]): void {
    const claimed = this.claimed.get(userId);
    if (!claimed) return;
    for (const id of ids) claimed.delete(id);
    if (claimed.size === 0) this.claimed.delete(userId);
  }
}

import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, getTableColumns, getTableName, inArray, isNotNull, isNull, lte, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { NOTIFICATION_TYPES } from '../../contract/notifications';
import { insertsOf, rowsOf, type Db, type Store, type Transaction } from '../../db/open-database';
import { isForeignKeyViolation } from '../../db/errors';
import { rowsAffected } from '../../db/rows-affected';
import { Forbidden, InvalidOperation, NotFound, ValidationFailed } from '../errors';
import { decodeCursor, LAST_INSTANT_MS, pageOf } from '../pagination/keyset-cursor';
import { rowsAfter } from '../pagination/keyset';
import { NO_NOTIFICATION_EVENTS, type NotificationEvents } from '../metrics/metrics';
import type { InstanceBus, Wakeup } from '../realtime/bus';
import { TickBatcher } from '../realtime/tick-batcher';

export type NotificationRow = Store['t']['notifications']['$inferSelect'];
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];
export interface NotificationContent {
  type: NotificationType;
  message: string;
}

interface UndeliveredRead {
  userId: number;
  limit: number;
  except: readonly string[];
}

interface Confirmation {
  userId: number;
  ids: string[];
}

export interface ListFilter {
  delivered?: boolean;
  read?: boolean;
  limit: number;
  cursor?: string;
}

// `at` within what both databases take: beyond, the query would fail instead of a 400.
const ListCursor = z.object({ at: z.number().int().nonnegative().max(LAST_INSTANT_MS), id: z.string().uuid() }).strict();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string) => UUID.test(value);
// Postgres's uuid type ignores letter case, SQLite's text does not: compare ids in lower case on both.
const canonical = (id: string) => id.toLowerCase();
/** users.id is a 32-bit integer: a larger id names no user (and Postgres would refuse to compare it). */
const MAX_USER_ID = 2_147_483_647;

/**
 * The INSERT of a single notification (the test notification, one recipient, alone in its turn of
 * the event loop), built and prepared once: building a drizzle query and preparing its SQL cost
 * more than running it.
 */
function prepareInsertOne({ db, t }: Store) {
  return db
    .insert(t.notifications)
    .values({
      id: sql.placeholder('id'),
      userId: sql.placeholder('userId'),
      type: sql.placeholder('type'),
      message: sql.placeholder('message'),
      createdAt: sql.placeholder('createdAt'),
      deliveredAt: null,
      readAt: null,
    })
    .prepare('insert_one_notification');
}

/**
 * A notification for the user, not yet written: for another domain's transaction, which reports it
 * to `NotificationsService.written` once committed.
 */
export function newNotification(userId: number, content: NotificationContent, createdAt = new Date()): NotificationRow {
  return { id: randomUUID(), userId, type: content.type, message: content.message, createdAt, deliveredAt: null, readAt: null };
}

/** Notifications: creating them (and waking their users' clients), reading, delivery and read state. */
export class NotificationsService {
  private readonly undeliveredReads = new TickBatcher((reads: UndeliveredRead[]) => this.readUndelivered(reads), 500);
  private readonly confirmations = new TickBatcher((batch: Confirmation[]) => this.confirmBatch(batch), 500);
  private readonly singleInserts = new TickBatcher((rows: NotificationRow[]) => this.insertSingles(rows), 500);
  private readonly insertOne: ReturnType<typeof prepareInsertOne>;

  constructor(
    private readonly store: Store,
    private readonly bus: InstanceBus,
    private readonly events: NotificationEvents = NO_NOTIFICATION_EVENTS,
  ) {
    this.insertOne = prepareInsertOne(store);
  }

  /** Creates one notification per user and wakes their clients; the service other domains call. */
  async notify(userIds: number[], content: NotificationContent): Promise<NotificationRow[]> {
    const recipients = [...new Set(userIds)];
    const rows = await this.insertForKnownUsers(recipients, content);
    await this.written(rows);
    return rows;
  }

  /**
   * Counts notifications that have been written and wakes their users' clients (on every instance):
   * after notify's insert, or after the transaction of another domain that wrote them with its own
   * change (newNotification).
   */
  async written(rows: NotificationRow[]): Promise<void> {
    if (rows.length > 0) await this.announce(rows.length, { userIds: [...new Set(rows.map((row) => row.userId))] });
  }

  /** The admin API: for the listed users or for all; nobody else may send. */
  async sendAsAdmin(sender: { isAdmin: boolean }, request: AdminSend): Promise<Sent> {
    const content = adminContentOf(sender, request);
    if (request.all) return { created: await this.notifyAll(content) };
    const rows = await this.notify(request.user_ids ?? [], content);
    return { created: rows.length, ids: rows.map((row) => row.id) };
  }

  /**
   * sendAsAdmin's writes as statements of the caller's transaction — an Idempotency-Key's, which
   * keeps the answer with them (IdempotencyService.once) —, unknown recipients refused before any
   * write; `announceSent` once it has committed.
   */
  *sendAsAdminWithin(tx: Db, sender: { isAdmin: boolean }, request: AdminSend): Transaction<Sent> {
    const content = adminContentOf(sender, request);
    const n = this.store.t.notifications;
    if (request.all) return { created: (yield* rowsOf(this.everyUserInsert(tx, content).returning({ id: n.id }))).length };
    const recipients = [...new Set(request.user_ids ?? [])];
    const unknown = unknownAmong(recipients, yield* rowsOf(this.knownUsers(tx, recipients)));
    if (unknown.length > 0) throw unknownUsersRefused(unknown);
    const createdAt = new Date();
    const rows = recipients.map((userId) => newNotification(userId, content, createdAt));
    yield* insertsOf(tx, n, rows);
    return { created: rows.length, ids: rows.map((row) => row.id) };
  }

  /** Counts and announces what sendAsAdminWithin wrote, once its transaction has committed. */
  async announceSent(request: AdminSend, sent: Sent): Promise<void> {
    await this.announce(sent.created, request.all ? { all: true } : { userIds: [...new Set(request.user_ids ?? [])] });
  }

  /** One notification for every user, made by one INSERT … SELECT however many users there are; returns how many. */
  async notifyAll(content: NotificationContent): Promise<number> {
    const count = rowsAffected(await this.everyUserInsert(this.store.db, content));
    await this.announce(count, { all: true });
    return count;
  }

  /** Counts `created` new notifications and wakes the clients `wakeup` names, on every instance. */
  private async announce(created: number, wakeup: Wakeup): Promise<void> {
    this.events.created(created);
    await this.bus.publish(wakeup);
  }

  /** The INSERT … SELECT of a notification for every user. */
  private everyUserInsert(db: Db, content: NotificationContent) {
    const { t } = this.store;
    const n = t.notifications;
    return db.insert(n).select(
      db
        .select({
          id: sql<string>`gen_random_uuid()`.as('id'),
          userId: t.users.id,
          type: sql<string>`${content.type}`.as('type'),
          message: sql<string>`${content.message}`.as('message'),
          createdAt: sql<Date>`${sql.param(new Date(), n.createdAt)}`.as('created_at'),
          deliveredAt: sql<null>`null`.as('delivered_at'),
          readAt: sql<null>`null`.as('read_at'),
        })
        .from(t.users),
    );
  }

  /** Newest first, with the cursor of the next page when there is one. */
  async list(userId: number, filter: ListFilter): Promise<{ items: NotificationRow[]; nextCursor: string | null }> {
    const rows = await this.pageQuery(userId, filter);
    return pageOf(rows, filter.limit, (last) => ({ at: last.createdAt.getTime(), id: last.id }));
  }

  /** The query of one page of the list (limit + 1 rows, to tell whether another page follows). */
  pageQuery(userId: number, filter: ListFilter) {
    const { db, t } = this.store;
    const n = t.notifications;
    const after = filter.cursor ? decodeCursor(filter.cursor, ListCursor) : undefined;
    return db
      .select()
      .from(n)
      .where(
        and(
          eq(n.userId, userId),
          stateIs(n.deliveredAt, filter.delivered),
          stateIs(n.readAt, filter.read),
          after && rowsAfter(n.createdAt, n.id, sql.param(new Date(after.at), n.createdAt), after.id, 'desc'),
        ),
      )
      .orderBy(desc(n.createdAt), desc(n.id))
      .limit(filter.limit + 1);
  }

  async get(userId: number, id: string): Promise<NotificationRow> {
    const { db, t } = this.store;
    const [row] = isUuid(id)
      ? await db.select().from(t.notifications).where(this.own(userId, id))
      : [];
    if (!row) throw new NotFound();
    return row;
  }

  /** The manual fallback: a second acknowledgement is refused. */
  async acknowledge(userId: number, id: string): Promise<NotificationRow> {
    const [row] = await this.setDelivered(userId, [id]);
    if (row) {
      this.events.acknowledged();
      return row;
    }
    await this.get(userId, id);
    throw new InvalidOperation('Notification already acknowledged');
  }

  /** Marks delivered unless it already is: the first delivered_at is kept. */
  async markDelivered(userId: number, id: string): Promise<NotificationRow> {
    const [row] = await this.setDelivered(userId, [id]);
    return row ?? this.get(userId, id);
  }


  async markRead(userId: number, id: string): Promise<NotificationRow> {
    if (!isUuid(id)) throw new NotFound();
    const { db, t } = this.store;
    const [row] = await db
      .update(t.notifications)
      .set({ readAt: new Date() })
      .where(and(this.own(userId, id), isNull(t.notifications.readAt)))
      .returning();
    return row ?? this.get(userId, id);
  }

  async markAllRead(userId: number): Promise<number> {
    const { db, t } = this.store;
    const updated = await db
      .update(t.notifications)
      .set({ readAt: new Date() })
      .where(and(eq(t.notifications.userId, userId), isNull(t.notifications.readAt)))
      .returning({ id: t.notifications.id });
    return updated.length;
  }

  async unreadCount(userId: number): Promise<number> {
    const { db, t } = this.store;
    const [{ unread }] = await db
      .select({ unread: count() })
      .from(t.notifications)
      .where(and(eq(t.notifications.userId, userId), isNull(t.notifications.readAt)));
    return unread;
  }

  /** Totals and the newest undelivered, over the notifications that match `delivered` when given. */
  async deliveryStatus(userId: number, delivered?: boolean) {
    const { db, t } = this.store;
    const n = t.notifications;
    const scope = and(eq(n.userId, userId), stateIs(n.deliveredAt, delivered));
    const [[totals], undelivered] = await Promise.all([
      db.select({ total: count(), delivered: count(n.deliveredAt) }).from(n).where(scope),
      db
        .select()
        .from(n)
        .where(and(scope, isNull(n.deliveredAt)))
        .orderBy(desc(n.createdAt), desc(n.id))
        .limit(100),
    ]);
    return {
      total: totals.total,
      delivered: totals.delivered,
      undelivered: totals.total - totals.delivered,
      // Per mille rounded from the exact quotient: (d / t) * 1000 rounds a half down now and then (201 of 400: 50.2).
      deliveryRate: totals.total === 0 ? 100 : Math.round((totals.delivered * 1000) / totals.total) / 10,
      recentUndelivered: undelivered.slice(0, 10),
      undeliveredNotifications: undelivered,
    };
  }

  /** Wakes the user's live connections for the undelivered among `ids` (all when empty); how many. */
  async retry(userId: number, ids: string[] = []): Promise<number> {
    const { db, t } = this.store;
    const n = t.notifications;
    const wanted = ids.filter(isUuid).map(canonical);
    if (ids.length > 0 && wanted.length === 0) return 0;
    const [{ pending }] = await db
      .select({ pending: count() })
      .from(n)
      .where(and(eq(n.userId, userId), isNull(n.deliveredAt), wanted.length ? inArray(n.id, wanted) : undefined));
    if (pending > 0) await this.bus.publish({ userIds: [userId] });
    return pending;
  }

  /**
   * The user's undelivered notifications, oldest first, leaving out `except` (already in flight).
   * Reads of the same moment are answered by one query (see readUndelivered).
   */
  undelivered(userId: number, limit: number, except: readonly string[] = []): Promise<NotificationRow[]> {
    return this.undeliveredReads.add({ userId, limit, except });
  }

  /**
   * Sets delivered_at on `ids`, notifications this instance read for the user and wrote to their
   * client (see DeliveryClaims); returns how many were undelivered. Confirmations of the same moment
   * become one UPDATE (see confirmBatch), whose user condition covers the whole batch: an id of
   * another user of the batch would be marked too. What a client names goes through markReceived.
   */
  confirmDelivery(userId: number, ids: string[]): Promise<number> {
    return this.confirmations.add({ userId, ids });
  }

  /**
   * The client says it has received `ids` (a stream's Last-Event-ID): sets delivered_at on those of
   * them that are the user's and undelivered, ignoring the rest; returns how many.
   */
  async markReceived(userId: number, ids: string[]): Promise<number> {
    return (await this.setDelivered(userId, ids)).length;
  }

  /** Which of these users have undelivered notifications (the hub's fallback while the bus is down). */
  async usersWithUndelivered(userIds: number[]): Promise<number[]> {
    const { db, t } = this.store;
    const n = t.notifications;
    const rows = await db
      .selectDistinct({ userId: n.userId })
      .from(n)
      .where(and(this.store.anyOf(n.userId, userIds), isNull(n.deliveredAt)));
    return rows.map((row) => row.userId);
  }

  /**
   * Many users' undelivered notifications in one query: each user's oldest, ranked with a window
   * function, as many as the most demanding read of the batch needs; each read then drops what it
   * has in flight and keeps its limit. The rows come straight out of the ranked subquery, flat (a
   * join back to the table for them made Postgres look each row up twice, and the rows' mapping
   * nested). The subquery is named as the table, so that the outer query selects the table's own
   * columns: drizzle maps a row of subquery fields (proxies) some 1.5 µs slower than one of
   * columns — 30 % of this read's time for 10,000 rows, alternated in one process on both dialects.
   */
  private async readUndelivered(reads: UndeliveredRead[]): Promise<NotificationRow[][]> {
    const { db, t } = this.store;
    const n = t.notifications;
    const userIds = [...new Set(reads.map((read) => read.userId))];
    const perUser = Math.max(...reads.map((read) => read.limit + read.except.length));
    const ranked = db
      .select({
        ...getTableColumns(n),
        rank: sql<number>`row_number() over (partition by ${n.userId} order by ${n.createdAt}, ${n.id})`.as('rank'),
      })
      .from(n)
      .where(and(this.store.anyOf(n.userId, userIds), isNull(n.deliveredAt)))
      .as(getTableName(n));
    const rows: NotificationRow[] = await db
      .select(getTableColumns(n))
      .from(ranked)
      .where(lte(ranked.rank, perUser))
      .orderBy(asc(n.createdAt), asc(n.id));
    const byUser = new Map<number, NotificationRow[]>();
    for (const notification of rows) {
      const ofUser = byUser.get(notification.userId);
      if (ofUser) ofUser.push(notification);
      else byUser.set(notification.userId, [notification]);
    }
    return reads.map(({ userId, limit, except }) => {
      const own = byUser.get(userId) ?? [];
      const skip = except.length > 0 ? new Set(except) : undefined;
      const kept = skip ? own.filter((row) => !skip.has(row.id)) : own;
      return kept.length > limit ? kept.slice(0, limit) : kept;
    });
  }

  /** One UPDATE for the confirmations of a moment; each learns how many of its own it set. */
  private async confirmBatch(batch: Confirmation[]): Promise<number[]> {
    // Loops, not chains of map and filter: this runs for each delivered long-poll of a broadcast,
    // and every intermediate object was garbage.
    const ids: string[] = [];
    const userIds = new Set<number>();
    for (const confirmation of batch) {
      for (const id of confirmation.ids) {
        if (!isUuid(id)) continue;
        ids.push(canonical(id));
        userIds.add(confirmation.userId);
      }
    }
    if (ids.length === 0) return batch.map(() => 0);
    const { db, t } = this.store;
    const n = t.notifications;
    const updated = await db
      .update(n)
      .set({ deliveredAt: new Date() })
      .where(and(this.store.anyOf(n.id, ids), this.store.anyOf(n.userId, [...userIds]), isNull(n.deliveredAt)))
      .returning({ id: n.id, userId: n.userId });
    // The user condition above is per batch; count only each request's own user's rows.
    const ownerOf = new Map<string, number>();
    for (const row of updated) ownerOf.set(row.id, row.userId);
    return batch.map(({ userId, ids: asked }) => {
      let set = 0;
      for (const id of asked) if (ownerOf.get(canonical(id)) === userId) set++;
      return set;
    });
  }

  private own(userId: number, id: string): SQL {
    const { t } = this.store;
    return and(eq(t.notifications.id, canonical(id)), eq(t.notifications.userId, userId))!;
  }

  /** The one UPDATE that sets delivered_at: only where unset, so the first delivery time stays. */
  private async setDelivered(userId: number, ids: string[]): Promise<NotificationRow[]> {
    const wanted = ids.filter(isUuid).map(canonical);
    if (wanted.length === 0) return [];
    const { db, t } = this.store;
    const n = t.notifications;
    return db
      .update(n)
      .set({ deliveredAt: new Date() })
      .where(and(eq(n.userId, userId), inArray(n.id, wanted), isNull(n.deliveredAt)))
      .returning();
  }

  /**
   * Inserts the notifications, refused as a whole when any recipient is unknown. The insert comes
   * first and the foreign key on user_id checks the recipients: which ones are unknown is asked only
   * when it refuses, so that the usual case is one statement, not two.
   */
  private async insertForKnownUsers(userIds: number[], content: NotificationContent): Promise<NotificationRow[]> {
    // Beyond a 32-bit id Postgres would refuse the value itself, not the foreign key.
    const unknown = userIds.some((id) => id > MAX_USER_ID) ? await this.unknownUsers(userIds) : [];
    if (unknown.length === 0) {
      try {
        return await this.insert(userIds, content);
      } catch (error) {
        if (!isForeignKeyViolation(error)) throw error;
        unknown.push(...(await this.unknownUsers(userIds)));
        // Refused, yet all known now: a recipient was created in between.
        if (unknown.length === 0) return this.insert(userIds, content);
      }
    }
    throw unknownUsersRefused(unknown);
  }

  private async insert(userIds: number[], content: NotificationContent): Promise<NotificationRow[]> {
    const createdAt = new Date();
    const rows = userIds.map((userId) => newNotification(userId, content, createdAt));
    if (rows.length === 1) {
      const refused = await this.singleInserts.add(rows[0]);
      if (refused) throw refused;
    } else {
      await this.store.insertAll(this.store.t.notifications, rows);
    }
    return rows;
  }

  /**
   * The single-recipient notifications of one turn of the event loop, inserted by one statement:
   * on Postgres each was a commit of its own, and when 200 users' creates came at once the reads
   * that deliver them queued behind 200 commits. Each create learns what refused its row (undefined:
   * inserted). A recipient unknown to the foreign key refuses the whole statement; then each row
   * goes on its own, so that only its create is refused.
   */
  private async insertSingles(rows: NotificationRow[]): Promise<unknown[]> {
    if (rows.length > 1) {
      try {
        await this.store.insertAll(this.store.t.notifications, rows);
        return rows.map(() => undefined);
      } catch (error) {
        if (!isForeignKeyViolation(error)) throw error;
      }
    }
    return Promise.all(rows.map((row) => this.insertOne.execute(row).then(() => undefined, (error: unknown) => error)));
  }

  private async unknownUsers(userIds: number[]): Promise<number[]> {
    return unknownAmong(userIds, await this.knownUsers(this.store.db, userIds));
  }

  /** Those of `userIds` that are users (a larger id than a 32-bit integer is none). */
  private knownUsers(db: Db, userIds: number[]) {
    const { t } = this.store;
    return db
      .select({ id: t.users.id })
      .from(t.users)
      .where(this.store.anyOf(t.users.id, userIds.filter((id) => id <= MAX_USER_ID)));
  }

}

/** An admin's send: to the listed users, or to all. */
export interface AdminSend extends NotificationContent {
  user_ids?: number[];
  all?: true;
}

/** What an admin's send made: how many, and the ids of the listed users' (not for all: they would be megabytes, kept again under an Idempotency-Key). */
export interface Sent {
  created: number;
  ids?: string[];
}

/** The content of an admin's send; Forbidden for anyone else. */
function adminContentOf(sender: { isAdmin: boolean }, request: AdminSend): NotificationContent {
  if (!sender.isAdmin) throw new Forbidden('Only administrators can send notifications to users.');
  return { type: request.type, message: request.message };
}

const unknownAmong = (userIds: number[], known: Array<{ id: number }>) => {
  const ids = new Set(known.map((user) => user.id));
  return userIds.filter((id) => !ids.has(id));
};

const unknownUsersRefused = (unknown: number[]) => ValidationFailed.field('user_ids', `Unknown user ids: ${unknown.join(', ')}.`);

/** `true` → the column is set, `false` → it is null, undefined → no condition. */
function stateIs(column: Parameters<typeof isNull>[0], state: boolean | undefined): SQL | undefined {
  if (state === undefined) return undefined;
  return state ? isNotNull(column) : isNull(column);
}

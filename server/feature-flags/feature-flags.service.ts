import { and, asc, count, countDistinct, desc, eq, gt, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { FLAG_KEY } from '../../contract/feature-flags';
import { isForeignKeyViolation, isUniqueViolation } from '../../db/errors';
import { rowsOf, type Db, type Store, type Transaction } from '../../db/open-database';
import { lockRows } from '../../db/row-lock';
import type { AuthUser } from '../auth/auth.service';
import { NotFound, ValidationFailed } from '../errors';
import { decodeCursor, IdCursor, pageOf, type Page } from '../pagination/keyset-cursor';
import type { FlagCache } from './flag-cache';
import { inRollout } from './rollout';

type FlagRow = Store['t']['featureFlags']['$inferSelect'];
export type Flag = FlagRow & { userCount: number };
export type AuditRow = Store['t']['featureFlagAudit']['$inferSelect'] & { actor: string | null };
export type AuditAction = 'create' | 'update' | 'delete' | 'grant' | 'revoke';

/** What a user is told about one flag. */
export interface FlagCheck {
  flag: FlagRow;
  userHasAccess: boolean;
  /** Global switch, explicit access and rollout together. */
  isEnabled: boolean;
}

export interface FlagInput {
  key?: string;
  name: string;
  description: string;
  is_enabled: boolean;
  rollout_percentage: number;
}

export type FlagChanges = Partial<Omit<FlagInput, 'key'>>;

const duplicateKey = () => ValidationFailed.field('key', 'A feature flag with this key already exists.');

/**
 * A key made from the name: lowercase letters and digits, other runs of characters as `_`. Accents
 * are dropped and compatibility forms spelled plainly (`Ü` → `u`, `㎒` → `mhz`): decomposed first,
 * the combining marks removed, and only then lowercased.
 */
export function keyFromName(name: string): string {
  const key = name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64);
  return FLAG_KEY.test(key) ? key : 'flag';
}

/**
 * Feature flags: what each user gets (explicit access, the global switch and a sticky rollout), the
 * usage they log, and the administrators' management, each change of which is audited in the same
 * transaction as the change itself. What users' evaluations read comes from the cache, which every
 * change drops on every instance; administrators' reads go to the database.
 */
export class FeatureFlagsService {
  constructor(
    private readonly store: Store,
    private readonly cache: FlagCache,
  ) {}

  /**
   * Regular users: enabled flags they were granted, split by the rollout. Admins: all, split by the
   * switch. Kept in the cache as evaluated (the same flag objects each time, which the serializer
   * remembers), so a warm call costs no hashing at all.
   */
  myFeatures(user: AuthUser): Promise<{ enabled: Flag[]; disabled: Flag[] }> {
    if (user.isAdmin) {
      return this.cache.get('features:admin', async () => split((await this.allFlags()).list, (flag) => flag.isEnabled));
    }
    return this.cache.get(`features:${user.id}`, async () => {
      const [{ list }, grants] = await Promise.all([this.allFlags(), this.grantsOf(user.id)]);
      const granted = list.filter((flag) => flag.isEnabled && grants.has(flag.id));
      return split(granted, (flag) => inRollout(flag, user.id));
    });
  }

  /** The flag as the user gets it; null when no flag has that key. */
  async check(user: AuthUser, key: string): Promise<FlagCheck | null> {
    const [{ byKey }, grants] = await Promise.all([this.allFlags(), this.grantsOf(user.id)]);
    const flag = byKey.get(key);
    if (!flag) return null;
    const userHasAccess = grants.has(flag.id);
    return { flag, userHasAccess, isEnabled: flag.isEnabled && userHasAccess && inRollout(flag, user.id) };
  }

  /** Records one use of the flag by the user; null when no flag has that key (or it was just deleted). */
  async logAccess(user: AuthUser, key: string, client: { ip?: string; userAgent?: string }): Promise<FlagRow | null> {
    const flag = (await this.allFlags()).byKey.get(key);
    if (!flag) return null;
    try {
      await this.store.db.insert(this.store.t.featureAccessEvents).values({
        flagId: flag.id,
        userId: user.id,
        accessedAt: new Date(),
        ip: client.ip?.slice(0, 100) ?? null,
        userAgent: client.userAgent?.slice(0, 500) ?? null,
      });
    } catch (error) {
      if (isForeignKeyViolation(error)) return null;
      throw error;
    }
    return flag;
  }

  /** Every flag, oldest first, in pages. */
  async list(query: { limit: number; cursor?: string }): Promise<Page<Flag>> {
    const { t } = this.store;
    const after = query.cursor ? decodeCursor(query.cursor, IdCursor) : undefined;
    const flags = await this.flagsWhere(after && gt(t.featureFlags.id, after.i), query.limit + 1);
    return pageOf(flags, query.limit, (last) => ({ i: last.id }));
  }

  async get(key: string): Promise<Flag> {
    const [flag] = await this.flagsWhere(eq(this.store.t.featureFlags.key, key));
    if (!flag) throw new NotFound();
    return flag;
  }

  async create(actor: AuthUser, input: FlagInput): Promise<Flag> {
    const { t } = this.store;
    const now = new Date();
    const values = {
      key: input.key ?? keyFromName(input.name),
      name: input.name,
      description: input.description,
      isEnabled: input.is_enabled,
      rolloutPercentage: input.rollout_percentage,
      createdAt: now,
      updatedAt: now,
    };
    try {
      const created = await this.store.transaction(function* (tx) {
        const [flag] = yield* rowsOf(tx.insert(t.featureFlags).values(values).returning());
        yield* audit(tx, t, actor, flag.key, 'create', null, snapshot(flag));
        return flag;
      });
      await this.cache.changed();
      return { ...created, userCount: 0 };
    } catch (error) {
      if (isUniqueViolation(error)) throw duplicateKey();
      throw error;
    }
  }

  async update(actor: AuthUser, key: string, changes: FlagChanges): Promise<Flag> {
    const { t } = this.store;
    const set = {
      ...(changes.name !== undefined && { name: changes.name }),
      ...(changes.description !== undefined && { description: changes.description }),
      ...(changes.is_enabled !== undefined && { isEnabled: changes.is_enabled }),
      ...(changes.rollout_percentage !== undefined && { rolloutPercentage: changes.rollout_percentage }),
      updatedAt: new Date(),
    };
    await this.store.transaction(function* (tx) {
      const before = yield* flagByKey(tx, t, key);
      const [after] = yield* rowsOf(tx.update(t.featureFlags).set(set).where(eq(t.featureFlags.id, before.id)).returning());
      yield* audit(tx, t, actor, key, 'update', snapshot(before), snapshot(after));
    });
    await this.cache.changed();
    return this.get(key);
  }

  async remove(actor: AuthUser, key: string): Promise<void> {
    const { t } = this.store;
    await this.store.transaction(function* (tx) {
      const before = yield* flagByKey(tx, t, key);
      yield* rowsOf(tx.delete(t.featureFlags).where(eq(t.featureFlags.id, before.id)).returning({ id: t.featureFlags.id }));
      yield* audit(tx, t, actor, key, 'delete', snapshot(before), null);
    });
    await this.cache.changed();
  }

  /** The users with explicit access, by user id, in pages. */
  async listUsers(key: string, query: { limit: number; cursor?: string }) {
    const flag = await this.get(key);
    const { db, t } = this.store;
    const after = query.cursor ? decodeCursor(query.cursor, IdCursor) : undefined;
    const rows = await db
      .select({ user: t.users, grantedAt: t.featureFlagUsers.createdAt })
      .from(t.featureFlagUsers)
      .innerJoin(t.users, eq(t.users.id, t.featureFlagUsers.userId))
      .where(and(eq(t.featureFlagUsers.flagId, flag.id), after && gt(t.featureFlagUsers.userId, after.i)))
      .orderBy(asc(t.featureFlagUsers.userId))
      .limit(query.limit + 1);
    return pageOf(rows, query.limit, (last) => ({ i: last.user.id }));
  }

  /** Grants explicit access; returns the ids that did not have it yet, and the flag's user count. */
  async grant(actor: AuthUser, key: string, userIds: number[]): Promise<{ granted: number[]; userCount: number }> {
    const { db, t } = this.store;
    const wanted = [...new Set(userIds)];
    const known = await db.select({ id: t.users.id }).from(t.users).where(inArray(t.users.id, wanted));
    const unknown = wanted.filter((id) => !known.some((user) => user.id === id));
    if (unknown.length > 0) throw ValidationFailed.field('user_ids', `Unknown user ids: ${unknown.join(', ')}.`);
    const now = new Date();
    const granted = await this.store.transaction(function* (tx) {
      const flag = yield* flagByKey(tx, t, key);
      const rows = yield* rowsOf(
        tx
          .insert(t.featureFlagUsers)
          .values(wanted.map((userId) => ({ flagId: flag.id, userId, createdAt: now })))
          .onConflictDoNothing()
          .returning({ userId: t.featureFlagUsers.userId }),
      );
      const ids = rows.map((row) => row.userId).sort((a, b) => a - b);
      if (ids.length > 0) yield* audit(tx, t, actor, key, 'grant', null, { user_ids: ids });
      return ids;
    });
    if (granted.length > 0) await this.cache.changed();
    return { granted, userCount: (await this.get(key)).userCount };
  }

  async revoke(actor: AuthUser, key: string, userId: number): Promise<void> {
    const { t } = this.store;
    await this.store.transaction(function* (tx) {
      const flag = yield* flagByKey(tx, t, key);
      const removed = yield* rowsOf(
        tx
          .delete(t.featureFlagUsers)
          .where(and(eq(t.featureFlagUsers.flagId, flag.id), eq(t.featureFlagUsers.userId, userId)))
          .returning({ userId: t.featureFlagUsers.userId }),
      );
      if (removed.length === 0) throw new NotFound('This user has no explicit access to the flag.');
      yield* audit(tx, t, actor, key, 'revoke', { user_id: userId }, null);
    });
    await this.cache.changed();
  }

  /** Accesses per UTC day over the last `days` days (today included, empty days as zeros), and distinct users. */
  async stats(key: string, days: number, now = new Date()) {
    const flag = await this.get(key);
    const { db, t } = this.store;
    const e = t.featureAccessEvents;
    const dayList = Array.from({ length: days }, (_, i) => new Date(now.getTime() - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10));
    const since = and(eq(e.flagId, flag.id), gte(e.accessedAt, new Date(`${dayList[0]}T00:00:00.000Z`)));
    const [perDay, [total]] = await Promise.all([
      db
        .select({ day: e.accessedDay, accesses: count(), distinctUsers: countDistinct(e.userId) })
        .from(e)
        .where(since)
        .groupBy(e.accessedDay),
      db.select({ accesses: count(), distinctUsers: countDistinct(e.userId) }).from(e).where(since),
    ]);
    const byDay = new Map(perDay.map((row) => [row.day, row]));
    return {
      flag,
      days,
      totalAccesses: total?.accesses ?? 0,
      distinctUsers: total?.distinctUsers ?? 0,
      perDay: dayList.map((day) => ({ day, accesses: byDay.get(day)?.accesses ?? 0, distinctUsers: byDay.get(day)?.distinctUsers ?? 0 })),
    };
  }

  /** The audit log, newest first, in pages; optionally one flag's. */
  async audit(query: { limit: number; cursor?: string; flag?: string }): Promise<Page<AuditRow>> {
    const { db, t } = this.store;
    const a = t.featureFlagAudit;
    const before = query.cursor ? decodeCursor(query.cursor, IdCursor) : undefined;
    const rows = await db
      .select({ entry: a, actor: t.users.username })
      .from(a)
      .leftJoin(t.users, eq(t.users.id, a.actorId))
      .where(and(query.flag === undefined ? undefined : eq(a.flagKey, query.flag), before && lt(a.id, before.i)))
      .orderBy(desc(a.id))
      .limit(query.limit + 1);
    return pageOf(
      rows.map((row) => ({ ...row.entry, actor: row.actor })),
      query.limit,
      (last) => ({ i: last.id }),
    );
  }

  /** Every flag, oldest first, and by key: what all evaluations read. */
  private allFlags(): Promise<{ list: Flag[]; byKey: Map<string, Flag> }> {
    return this.cache.get('flags', async () => {
      const list = await this.flagsWhere(undefined);
      return { list, byKey: new Map(list.map((flag) => [flag.key, flag])) };
    });
  }

  /** The ids of the flags the user was given explicit access to. */
  private grantsOf(userId: number): Promise<Set<number>> {
    return this.cache.get(`grants:${userId}`, async () => {
      const { db, t } = this.store;
      const rows = await db.select({ flagId: t.featureFlagUsers.flagId }).from(t.featureFlagUsers).where(eq(t.featureFlagUsers.userId, userId));
      return new Set(rows.map((row) => row.flagId));
    });
  }

  /** Flags with their user counts, oldest first (an order that is the same on both dialects). */
  private flagsWhere(condition: SQL | undefined, limit?: number): Promise<Flag[]> {
    const { db, t } = this.store;
    const userCount = sql<number>`(select count(*) from ${t.featureFlagUsers} where ${t.featureFlagUsers.flagId} = ${t.featureFlags.id})`.mapWith(Number);
    const query = db.select({ flag: t.featureFlags, userCount }).from(t.featureFlags).where(condition).orderBy(asc(t.featureFlags.id));
    return (limit ? query.limit(limit) : query).then((rows) => rows.map((row) => ({ ...row.flag, userCount: row.userCount })));
  }
}

/** The items `test` holds for, and the others, each in their order. */
function split<T>(items: T[], test: (item: T) => boolean): { enabled: T[]; disabled: T[] } {
  const enabled: T[] = [];
  const disabled: T[] = [];
  for (const item of items) (test(item) ? enabled : disabled).push(item);
  return { enabled, disabled };
}

/**
 * The flag, its row locked until the transaction ends (see lockRows): a concurrent change or delete
 * of the flag waits, so the audit's `before` is the flag as it is, and a grant cannot insert for a
 * flag deleted meanwhile.
 */
function* flagByKey(tx: Db, t: Store['t'], key: string): Transaction<FlagRow> {
  const [flag] = yield* rowsOf(lockRows(tx, t.featureFlags, 'id', eq(t.featureFlags.key, key)));
  if (!flag) throw new NotFound();
  return flag;
}

function* audit(tx: Db, t: Store['t'], actor: AuthUser, flagKey: string, action: AuditAction, before: object | null, after: object | null): Transaction<void> {
  yield* rowsOf(
    tx
      .insert(t.featureFlagAudit)
      .values({
        flagKey,
        actorId: actor.id,
        action,
        before: before && JSON.stringify(before),
        after: after && JSON.stringify(after),
        createdAt: new Date(),
      })
      .returning({ id: t.featureFlagAudit.id }),
  );
}

/** A flag's settings as the audit log keeps them. */
const snapshot = (flag: FlagRow) => ({
  key: flag.key,
  name: flag.name,
  description: flag.description,
  is_enabled: flag.isEnabled,
  rollout_percentage: flag.rolloutPercentage,
});

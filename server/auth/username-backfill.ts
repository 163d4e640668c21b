import { and, eq, isNull, or } from 'drizzle-orm';
import type { Store } from '../../db/open-database';
import { isUniqueViolation } from '../../db/errors';
import { usernameIdentity, type UsernameIdentity } from './username-identity';

/** A user whose name is one name with an older user's (same key or same skeleton): left as it is. */
export interface UsernameClash {
  username: string;
  clashesWith: string;
  by: keyof UsernameIdentity;
}

/**
 * Fills the username key and skeleton of users created before they existed (migration 0005), oldest
 * first, so that the older account keeps the name. A user whose key or skeleton an older user holds
 * keeps a null there and is reported, every start until an operator renames one of the two: merging
 * two accounts, or choosing for them, is not ours to do. Both still log in with their exact spelling.
 * Safe to run on several instances at once: each column is set only while it is null.
 */
export async function fillUsernameKeys(store: Store): Promise<UsernameClash[]> {
  const { db, t } = store;
  const pending = await db
    .select({ id: t.users.id, username: t.users.username, key: t.users.usernameKey, skeleton: t.users.usernameSkeleton })
    .from(t.users)
    .where(or(isNull(t.users.usernameKey), isNull(t.users.usernameSkeleton)))
    .orderBy(t.users.id);
  const clashes: UsernameClash[] = [];
  for (const user of pending) {
    const identity = usernameIdentity(user.username);
    for (const by of ['key', 'skeleton'] as const) {
      if (user[by] !== null) continue;
      const holder = await fillOne(store, user.id, by, identity[by]);
      if (holder !== undefined) clashes.push({ username: user.username, clashesWith: holder, by });
    }
  }
  return clashes;
}

const COLUMN = { key: 'usernameKey', skeleton: 'usernameSkeleton' } as const;

/** Sets one derived column of one user; when another user holds that value already, returns their name. */
async function fillOne(store: Store, userId: number, by: keyof UsernameIdentity, value: string): Promise<string | undefined> {
  const { db, t } = store;
  const column = t.users[COLUMN[by]];
  try {
    await db
      .update(t.users)
      .set({ [COLUMN[by]]: value })
      .where(and(eq(t.users.id, userId), isNull(column)));
    return undefined;
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const [holder] = await db.select({ username: t.users.username }).from(t.users).where(eq(column, value));
    return holder?.username ?? '(unknown)';
  }
}

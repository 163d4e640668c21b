import { eq } from 'drizzle-orm';
import type { Db, Store } from '../../db/open-database';
import { lockRows } from '../../db/row-lock';
import { ValidationFailed } from '../errors';

/**
 * How many of each thing one user may own (PROJECTS_PER_USER, TAGS_PER_USER) and one project may have
 * pending (INVITATIONS_PER_PROJECT): a list has to stay listable.
 */
export interface OwnershipCaps {
  projectsPerUser: number;
  tagsPerUser: number;
  invitationsPerProject: number;
}

export const OWNERSHIP_CAPS: OwnershipCaps = { projectsPerUser: 1000, tagsPerUser: 1000, invitationsPerProject: 1000 };

/** Refuses (400) one more when the user owns `owned` already and may own `cap`. */
export function assertRoomForOne(owned: number, cap: number, things: string): void {
  if (owned >= cap) throw ValidationFailed.field('non_field_errors', `You can own at most ${cap} ${things}; delete some first.`);
}

/**
 * In a transaction: locks the user's row until it ends (see lockRows), so that concurrent creations
 * of one user count what they own in turn and cannot pass a cap together.
 */
export function lockOwner(tx: Db, t: Store['t'], userId: number) {
  return lockRows(tx, t.users, 'id', eq(t.users.id, userId));
}

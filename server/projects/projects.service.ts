import { and, asc, count, eq, exists, gt, ne, or, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { rowsOf, type Db, type Store } from '../../db/open-database';
import { lockRows } from '../../db/row-lock';
import { Forbidden, NotFound, ValidationFailed } from '../errors';
import { assertRoomForOne, lockOwner, OWNERSHIP_CAPS } from '../limits/ownership-caps';
import { decodeCursor, IdCursor, pageOf, type Page, type PageRequest } from '../pagination/keyset-cursor';

/**
 * Members after the first page: the last username (usernames are unique); empty when the page ended
 * with the owner, who is listed first whatever their name, so the next page starts at the first other.
 */
const MemberCursor = z.object({ u: z.string().max(200) }).strict();

export type ProjectRow = Store['t']['projects']['$inferSelect'];

/**
 * Membership: the owner is a member by ownership (projects.owner_id); everyone else has a row in
 * project_members. Creating a project is then one INSERT, atomic on both dialects.
 */
export class ProjectsService {
  constructor(
    private readonly store: Store,
    /** How many projects one user may own. */
    private readonly maxOwned = OWNERSHIP_CAPS.projectsPerUser,
  ) {}

  /** SQL condition: the project is visible to (the user is a member of) it. */
  isMember(userId: number): SQL {
    const { db, t } = this.store;
    const memberRow = db
      .select({ one: t.projectMembers.userId })
      .from(t.projectMembers)
      .where(and(eq(t.projectMembers.projectId, t.projects.id), eq(t.projectMembers.userId, userId)));
    return or(eq(t.projects.ownerId, userId), exists(memberRow))!;
  }

  /** The user's projects, oldest first, in pages. */
  async list(userId: number, page: PageRequest): Promise<Page<ProjectRow>> {
    const { db, t } = this.store;
    const after = page.cursor ? decodeCursor(page.cursor, IdCursor) : undefined;
    const rows = await db
      .select()
      .from(t.projects)
      .where(and(this.isMember(userId), after && gt(t.projects.id, after.i)))
      .orderBy(asc(t.projects.id))
      .limit(page.limit + 1);
    return pageOf(rows, page.limit, (last) => ({ i: last.id }));
  }

  /** A new project owned by the user, unless they own as many as they may already. */
  async create(userId: number, input: { title: string; description: string }): Promise<ProjectRow> {
    const { t } = this.store;
    const cap = this.maxOwned;
    return this.store.transaction(function* (tx) {
      yield* rowsOf(lockOwner(tx, t, userId));
      const [{ owned }] = yield* rowsOf(tx.select({ owned: count() }).from(t.projects).where(eq(t.projects.ownerId, userId)));
      assertRoomForOne(owned, cap, 'projects');
      const [project] = yield* rowsOf(tx.insert(t.projects).values({ ...input, ownerId: userId, createdAt: new Date() }).returning());
      return project;
    });
  }

  /** The project if the user is a member of it; NotFound otherwise, whether or not it exists. */
  async get(userId: number, projectId: number): Promise<ProjectRow> {
    const { db, t } = this.store;
    const [project] = await db
      .select()
      .from(t.projects)
      .where(and(eq(t.projects.id, projectId), this.isMember(userId)));
    if (!project) throw new NotFound();
    return project;
  }

  /**
   * In a transaction: the project, its row locked until the transaction ends (see lockRows).
   * Transactions that count or add the project's invitations or members, and its deletion, so take
   * turns: none counts past a cap, deadlocks with the deletion's cascade, or refers to a project
   * deleted meanwhile. No row when there is no such project (any more).
   */
  lockProject(tx: Db, projectId: number) {
    const { t } = this.store;
    return lockRows(tx, t.projects, 'id', eq(t.projects.id, projectId));
  }

  /** A rule that needs the user to be a member of the project: 403 otherwise, whether or not it exists. */
  async requireMember(userId: number, projectId: number): Promise<ProjectRow> {
    try {
      return await this.get(userId, projectId);
    } catch (error) {
      if (error instanceof NotFound) throw new Forbidden('You are not a member of this project.');
      throw error;
    }
  }

  /**
   * In a transaction: the user's membership row in the project, none when they have none (the owner is
   * a member by ownership, without one). Read with the project locked (lockProject), as acceptances add theirs.
   */
  membershipRow(tx: Db, projectId: number, userId: number) {
    const { t } = this.store;
    return tx
      .select({ one: t.projectMembers.userId })
      .from(t.projectMembers)
      .where(and(eq(t.projectMembers.projectId, projectId), eq(t.projectMembers.userId, userId)));
  }

  /** Whether any project has this id (for rules that tell "no such project" from "not yours"). */
  async exists(projectId: number): Promise<boolean> {
    const { db, t } = this.store;
    const [project] = await db.select({ id: t.projects.id }).from(t.projects).where(eq(t.projects.id, projectId));
    return project !== undefined;
  }

  async update(userId: number, projectId: number, changes: { title?: string; description?: string }) {
    const project = await this.getAsOwner(userId, projectId);
    if (Object.keys(changes).length === 0) return project;
    const { db, t } = this.store;
    const [updated] = await db.update(t.projects).set(changes).where(eq(t.projects.id, project.id)).returning();
    if (!updated) throw new NotFound();
    return updated;
  }

  async remove(userId: number, projectId: number): Promise<void> {
    const project = await this.getAsOwner(userId, projectId);
    const { db, t } = this.store;
    await db.delete(t.projects).where(eq(t.projects.id, project.id));
  }

  /** The owner first (on the first page), then the other members by username, in pages. */
  async listMembers(userId: number, projectId: number, page: PageRequest) {
    const project = await this.get(userId, projectId);
    const { db, t } = this.store;
    const after = page.cursor ? decodeCursor(page.cursor, MemberCursor) : undefined;
    const owner = after ? [] : await db.select().from(t.users).where(eq(t.users.id, project.ownerId));
    const others = await db
      .select({ user: t.users })
      .from(t.projectMembers)
      .innerJoin(t.users, eq(t.users.id, t.projectMembers.userId))
      .where(and(eq(t.projectMembers.projectId, project.id), ne(t.users.id, project.ownerId), after && gt(t.users.username, after.u)))
      .orderBy(asc(t.users.username))
      .limit(page.limit + 1 - owner.length);
    const members = [...owner, ...others.map((row) => row.user)].map((user) => ({ user, isOwner: user.id === project.ownerId }));
    return pageOf(members, page.limit, (last) => ({ u: last.isOwner ? '' : last.user.username }));
  }


  /** The owner removes a member; a member removes themself (leaves). The owner can do neither to themself. */
  async removeMember(userId: number, projectId: number, memberId: number): Promise<void> {
    const leaving = memberId === userId;
    const project = leaving ? await this.get(userId, projectId) : await this.getAsOwner(userId, projectId);
    if (memberId === project.ownerId) {
      throw ValidationFailed.field('user_id', leaving ? 'The owner cannot leave their own project.' : 'The owner cannot be removed from the project.');
    }
    const { db, t } = this.store;
    const removed = await db
      .delete(t.projectMembers)
      .where(and(eq(t.projectMembers.projectId, project.id), eq(t.projectMembers.userId, memberId)))
      .returning();
    if (removed.length === 0) throw new NotFound('This user is not a member of the project.');
  }

  /** Members who are not the owner may look but not change: 403; non-members get 404. */
  async getAsOwner(userId: number, projectId: number): Promise<ProjectRow> {
    const project = await this.get(userId, projectId);
    if (project.ownerId !== userId) throw new Forbidden('Only the owner of the project can do this.');
    return project;
  }
}

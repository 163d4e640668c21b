import { and, asc, count, eq, gt, type SQL } from 'drizzle-orm';
import { rowsOf, type Store } from '../../db/open-database';
import type { AuthService } from '../auth/auth.service';
import { usernameKey } from '../auth/username-identity';
import { NotFound, ValidationFailed } from '../errors';
import { OWNERSHIP_CAPS } from '../limits/ownership-caps';
import type { NotificationsService } from '../notifications/notifications.service';
import { decodeCursor, IdCursor, pageOf, type Page, type PageRequest } from '../pagination/keyset-cursor';
import type { ProjectRow, ProjectsService } from '../projects/projects.service';

export type InvitationRow = Store['t']['projectInvitations']['$inferSelect'];
/** An invitation with what its lists show: the project's id and title, the inviter's username. */
export interface InvitationView {
  invitation: InvitationRow;
  project: { id: number; title: string };
  inviter: string;
}

interface Person {
  id: number;
  username: string;
}

const NO_SUCH_INVITATION = 'No such invitation.';

/**
 * Membership by consent: an owner invites a name, and its user accepts (becoming a member) or
 * declines. Nothing an owner sees tells whether a name belongs to a user: inviting one that does not
 * is stored and listed like any other, and can never be accepted.
 */
export class InvitationsService {
  constructor(
    private readonly store: Store,
    private readonly projects: ProjectsService,
    private readonly users: Pick<AuthService, 'findByUsername'>,
    private readonly notifications: Pick<NotificationsService, 'notify'>,
    /** How many invitations one project may have pending. */
    private readonly maxPending = OWNERSHIP_CAPS.invitationsPerProject,
  ) {}

  /**
   * Invites `username` to the owner's project and notifies its user, if there is one. A member, or a
   * name invited already, changes nothing. The caller learns nothing either way.
   */
  async invite(owner: Person, projectId: number, username: string): Promise<void> {
    const project = await this.projects.getAsOwner(owner.id, projectId);
    const invitee = await this.users.findByUsername(username);
    const invited = await this.insertInvitation(project, owner.id, username, invitee?.id ?? null);
    if (invited && invitee) {
      await this.notifications.notify([invitee.id], {
        type: 'INFO',
        message: `${owner.username} invited you to join the project "${project.title}".`,
      });
    }
  }

  /** The project's pending invitations, oldest first, in pages (owner only). */
  async listSent(ownerId: number, projectId: number, page: PageRequest): Promise<Page<InvitationView>> {
    const project = await this.projects.getAsOwner(ownerId, projectId);
    return this.pageWhere(eq(this.store.t.projectInvitations.projectId, project.id), page);
  }

  /** Withdraws one of the project's pending invitations (owner only). */
  async revoke(ownerId: number, projectId: number, invitationId: number): Promise<void> {
    const project = await this.projects.getAsOwner(ownerId, projectId);
    const i = this.store.t.projectInvitations;
    const deleted = await this.store.db
      .delete(i)
      .where(and(eq(i.id, invitationId), eq(i.projectId, project.id)))
      .returning({ id: i.id });
    if (deleted.length === 0) throw new NotFound(NO_SUCH_INVITATION);
  }

  /** The user's pending invitations, oldest first, in pages. */
  async listMine(userId: number, page: PageRequest): Promise<Page<InvitationView>> {
    return this.pageWhere(eq(this.store.t.projectInvitations.inviteeId, userId), page);
  }

  /** Joins the project the invitation is for, and tells its owner; another user's invitation is a 404. */
  async accept(user: Person, invitationId: number): Promise<ProjectRow> {
    const { t } = this.store;
    const i = t.projectInvitations;
    const projects = this.projects;
    const mine = and(eq(i.id, invitationId), eq(i.inviteeId, user.id));
    const project = await this.store.transaction(function* (tx) {
      const [found] = yield* rowsOf(tx.select({ projectId: i.projectId }).from(i).where(mine));
      if (!found) throw new NotFound(NO_SUCH_INVITATION);
      // The project's row first: its deletion waits, or went first and took the invitation with it.
      const [joined] = yield* rowsOf(projects.lockProject(tx, found.projectId));
      if (!joined) throw new NotFound(NO_SUCH_INVITATION);
      // Taken by a concurrent accept, decline or revocation meanwhile: not found either.
      const [invitation] = yield* rowsOf(tx.delete(i).where(mine).returning());
      if (!invitation) throw new NotFound(NO_SUCH_INVITATION);
      yield* rowsOf(
        tx
          .insert(t.projectMembers)
          .values({ projectId: invitation.projectId, userId: user.id, createdAt: new Date() })
          .onConflictDoNothing()
          // Every step of a transaction reads rows back (SQLite runs each with .all()).
          .returning({ userId: t.projectMembers.userId }),
      );
      return joined;
    });
    await this.notifications.notify([project.ownerId], {
      type: 'INFO',
      message: `${user.username} accepted your invitation to the project "${project.title}".`,
    });
    return project;
  }

  /** Turns the invitation down; another user's invitation is a 404. */
  async decline(userId: number, invitationId: number): Promise<void> {
    const i = this.store.t.projectInvitations;
    const deleted = await this.store.db
      .delete(i)
      .where(and(eq(i.id, invitationId), eq(i.inviteeId, userId)))
      .returning({ id: i.id });
    if (deleted.length === 0) throw new NotFound(NO_SUCH_INVITATION);
  }

  /**
   * One row per name (by its folded key) and project, and none for a member: a second invitation of a
   * name, or one of a member, changes nothing, also when the project has as many pending as it may.
   * Membership and the pending count are checked in the same transaction, with the project's row
   * locked, so that concurrent invitations cannot pass the cap together, nor one invite a member an
   * acceptance just made (nor refer to the project once it is deleted). Says whether it made one.
   */
  private async insertInvitation(project: ProjectRow, inviterId: number, username: string, inviteeId: number | null): Promise<boolean> {
    const i = this.store.t.projectInvitations;
    const projects = this.projects;
    const cap = this.maxPending;
    const key = usernameKey(username);
    return this.store.transaction(function* (tx) {
      const [locked] = yield* rowsOf(projects.lockProject(tx, project.id));
      if (!locked) throw new NotFound();
      // A member (the owner included) is not invited: asked with the project locked, as an acceptance
      // adds its member, so that an invitation racing the acceptance of the last one invites no member.
      if (inviteeId !== null) {
        if (locked.ownerId === inviteeId) return false;
        const [member] = yield* rowsOf(projects.membershipRow(tx, project.id, inviteeId));
        if (member) return false;
      }
      const [{ pending }] = yield* rowsOf(tx.select({ pending: count() }).from(i).where(eq(i.projectId, project.id)));
      if (pending >= cap) {
        const [invited] = yield* rowsOf(tx.select({ id: i.id }).from(i).where(and(eq(i.projectId, project.id), eq(i.usernameKey, key))));
        if (invited) return false;
        throw ValidationFailed.field('non_field_errors', `A project can have at most ${cap} pending invitations; revoke some first.`);
      }
      const inserted = yield* rowsOf(
        tx
          .insert(i)
          .values({ projectId: project.id, username, usernameKey: key, inviteeId, invitedBy: inviterId, createdAt: new Date() })
          .onConflictDoNothing()
          .returning({ id: i.id }),
      );
      return inserted.length > 0;
    });
  }

  /** A page of the invitations `condition` selects, in id order, with their projects and inviters. */
  private async pageWhere(condition: SQL, page: PageRequest): Promise<Page<InvitationView>> {
    const { db, t } = this.store;
    const i = t.projectInvitations;
    const after = page.cursor ? decodeCursor(page.cursor, IdCursor) : undefined;
    const rows = await db
      .select({ invitation: i, project: { id: t.projects.id, title: t.projects.title }, inviter: t.users.username })
      .from(i)
      .innerJoin(t.projects, eq(t.projects.id, i.projectId))
      .innerJoin(t.users, eq(t.users.id, i.invitedBy))
      .where(and(condition, after && gt(i.id, after.i)))
      .orderBy(asc(i.id))
      .limit(page.limit + 1);
    return pageOf(rows, page.limit, (last) => ({ i: last.invitation.id }));
  }
}

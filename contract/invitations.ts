import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, Detail, errors, IntId, PAGED_ARRAY, PageQuery, Timestamp } from './common';
import { Project } from './projects';

const c = initContract();

/** An invitation as its invitee sees it. */
export const Invitation = z.object({
  id: z.number().int(),
  project: z.object({ id: z.number().int(), title: z.string() }),
  /** The inviter's username. */
  invited_by: z.string(),
  created_at: Timestamp,
});

/** A pending invitation as the project's owner sees it: the name as it was typed. */
export const SentInvitation = z.object({
  id: z.number().int(),
  username: z.string(),
  invited_by: z.string(),
  created_at: Timestamp,
});

const ProjectParams = z.object({ id: IntId });
const InvitationParams = z.object({ id: IntId });
const Page = z.object(PageQuery(100, 100)).strict();

/**
 * Membership by consent: an owner invites a username, its user accepts or declines. Nothing here
 * tells whether a name exists: the invitation answers 202 either way and the owner's list shows
 * every name invited.
 */
export const invitationsContract = c.router(
  {
    invite: {
      method: 'POST',
      path: '/api/projects/:id/invitations/',
      summary: 'Invite a user by username to join the project (owner only)',
      description:
        'Answers 202 whether or not the name belongs to a user, and whether or not they are a member or invited ' +
        'already (then nothing changes), so that no name can be found out by inviting it. The invitee is notified.',
      pathParams: ProjectParams,
      body: z.object({ username: z.string().trim().min(1).max(150) }).strict(),
      responses: { 202: Detail, ...errors.badRequest, ...errors.forbidden, ...errors.notFound },
    },
    listSent: {
      method: 'GET',
      path: '/api/projects/:id/invitations/',
      summary: "The project's pending invitations, oldest first (owner only)",
      description: PAGED_ARRAY,
      pathParams: ProjectParams,
      query: Page,
      responses: { 200: z.array(SentInvitation), ...errors.badRequest, ...errors.forbidden, ...errors.notFound },
    },
    revoke: {
      method: 'DELETE',
      path: '/api/projects/:id/invitations/:invitationId/',
      summary: 'Withdraw a pending invitation (owner only)',
      pathParams: z.object({ id: IntId, invitationId: IntId }),
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.forbidden, ...errors.notFound },
    },
    listMine: {
      method: 'GET',
      path: '/api/invitations/',
      summary: "The user's pending invitations, oldest first",
      description: PAGED_ARRAY,
      query: Page,
      responses: { 200: z.array(Invitation), ...errors.badRequest },
    },
    accept: {
      method: 'POST',
      path: '/api/invitations/:id/accept/',
      summary: 'Accept an invitation: the user becomes a member, and gets the project',
      pathParams: InvitationParams,
      body: c.noBody(),
      responses: { 200: Project, ...errors.notFound },
    },
    decline: {
      method: 'POST',
      path: '/api/invitations/:id/decline/',
      summary: 'Decline an invitation',
      pathParams: InvitationParams,
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.notFound },
    },
  },
  { commonResponses: authenticatedErrors },
);

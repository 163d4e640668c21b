import type { InvitationView } from './invitations.service';

/** As its invitee sees it. */
export const serializeInvitation = ({ invitation, project, inviter }: InvitationView) => ({
  id: invitation.id,
  project: { id: project.id, title: project.title },
  invited_by: inviter,
  created_at: invitation.createdAt.toISOString(),
});

/** As the project's owner sees it: the name as it was typed, never whose it is. */
export const serializeSentInvitation = ({ invitation, inviter }: InvitationView) => ({
  id: invitation.id,
  username: invitation.username,
  invited_by: inviter,
  created_at: invitation.createdAt.toISOString(),
});

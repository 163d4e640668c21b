import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { pagedAnswer } from '../pagination/link-header';
import { serializeProject } from '../projects/project.serializer';
import { serializeInvitation, serializeSentInvitation } from './invitation.serializer';
import type { InvitationsService } from './invitations.service';

const s = initServer();

export const invitationsRouter = (invitations: InvitationsService) =>
  s.router(contract.invitations, {
    invite: async ({ params, body, req }) => {
      await invitations.invite(currentUser(req), params.id, body.username);
      return { status: 202, body: { detail: 'If a user has this name, they are invited.' } };
    },
    listSent: async ({ params, query, req, res }) =>
      pagedAnswer(await invitations.listSent(currentUser(req).id, params.id, query), serializeSentInvitation, req, res),
    revoke: async ({ params, req }) => {
      await invitations.revoke(currentUser(req).id, params.id, params.invitationId);
      return { status: 204, body: undefined };
    },
    listMine: async ({ query, req, res }) => pagedAnswer(await invitations.listMine(currentUser(req).id, query), serializeInvitation, req, res),
    accept: async ({ params, req }) => ({
      status: 200,
      body: serializeProject(await invitations.accept(currentUser(req), params.id)),
    }),
    decline: async ({ params, req }) => {
      await invitations.decline(currentUser(req).id, params.id);
      return { status: 204, body: undefined };
    },
  });

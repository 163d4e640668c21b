import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { pagedAnswer } from '../pagination/link-header';
import type { AuthService } from './auth.service';
import { currentAuth, currentUser } from './authenticate';
import { serializeSession } from './session.serializer';
import type { SessionsService } from './sessions.service';
import { serializeMe, serializeUser } from './user.serializer';

const s = initServer();

export const authRouter = (auth: AuthService, sessions: SessionsService) =>
  s.router(contract.auth, {
    register: async ({ body, req }) => {
      const user = await auth.register(
        { username: body.username, password: body.password, firstName: body.first_name, lastName: body.last_name },
        { address: req.ip ?? 'unknown' },
      );
      return { status: 201, body: serializeUser(user) };
    },
    login: async ({ body, req, res }) => {
      const token = await auth.login(body.username, body.password, req.ip ?? 'unknown', req.get('user-agent'));
      // A token must not be kept by any cache between the client and the server.
      res.set('Cache-Control', 'no-store');
      return { status: 200, body: { auth_token: token } };
    },
    logout: async ({ req }) => {
      await sessions.logout(currentAuth(req));
      return { status: 204, body: undefined };
    },
    logoutAll: async ({ req }) => {
      await sessions.revokeAll(currentUser(req).id);
      return { status: 204, body: undefined };
    },
    listSessions: async ({ query, req, res }) => {
      const { user, tokenId } = currentAuth(req);
      return pagedAnswer(await sessions.list(user.id, query), (session) => serializeSession(session, tokenId), req, res);
    },
    revokeSession: async ({ params, req }) => {
      await sessions.revoke(currentUser(req).id, params.id);
      return { status: 204, body: undefined };
    },
    me: async ({ req }) => ({ status: 200, body: serializeMe(currentUser(req)) }),
    replaceMe: updateNames(auth),
    updateMe: updateNames(auth),
  });

/** PUT and PATCH of /auth/users/me/ differ only in what the contract requires of the body. */
const updateNames =
  (auth: AuthService) =>
  async ({ body, req }: { body: { first_name?: string; last_name?: string }; req: Parameters<typeof currentUser>[0] }) => {
    const user = await auth.updateNames(currentUser(req).id, { firstName: body.first_name, lastName: body.last_name });
    return { status: 200 as const, body: serializeMe(user) };
  };

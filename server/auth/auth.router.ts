import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import type { AuthService } from './auth.service';
import { currentAuth, currentUser } from './authenticate';
import { serializeMe, serializeUser } from './user.serializer';

const s = initServer();

export const authRouter = (auth: AuthService) =>
  s.router(contract.auth, {
    register: async ({ body, req }) => {
      const user = await auth.register(
        { username: body.username, password: body.password, firstName: body.first_name, lastName: body.last_name },
        { address: req.ip ?? 'unknown' },
      );
      return { status: 201, body: serializeUser(user) };
    },
    login: async ({ body, req, res }) => {
      const token = await auth.login(body.username, body.password, req.ip ?? 'unknown');
      // A token must not be kept by any cache between the client and the server.
      res.set('Cache-Control', 'no-store');
      return { status: 200, body: { auth_token: token } };
    },
    logout: async ({ req }) => {
      await auth.logout(currentAuth(req).token);
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

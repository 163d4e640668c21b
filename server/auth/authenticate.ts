import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction } from 'express';
import { routeAccess } from '../../contract';
import { Forbidden } from '../errors';
import type { AuthUser } from './auth.service';
import type { AuthenticatedSession, SessionsService } from './sessions.service';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `authenticate` on every route that is not public. */
      auth?: AuthenticatedSession;
      /** Why a route served before express (http/lean-route.ts) refused the token: `authenticate` answers with it, not asking again. */
      authRefusal?: unknown;
    }
  }
}

type Authenticated = { auth?: AuthenticatedSession; authRefusal?: unknown };

/** What authentication reads of a request, whether a contract route or a plain express one. */
type IncomingRequest = Authenticated & { headers: IncomingHttpHeaders; tsRestRoute?: object };

/**
 * Middleware: every route needs a valid token unless its contract entry says `metadata.public`;
 * `metadata.adminOnly` routes need an administrator's.
 */
export function authenticate(sessions: SessionsService) {
  return (req: IncomingRequest, _res: unknown, next: NextFunction) => {
    const access = routeAccess(req.tsRestRoute);
    if (access.public) return next();
    if (req.authRefusal !== undefined) return next(req.authRefusal);
    const admit = (result: AuthenticatedSession) => {
      req.auth = result;
      next(access.adminOnly && !result.user.isAdmin ? new Forbidden() : undefined);
    };
    sessions.whenAuthenticated(req.headers.authorization, admit, next);
  };
}

/** The session of a request that passed `authenticate`. */
export function currentAuth(req: Authenticated): AuthenticatedSession {
  if (!req.auth) throw new Error('currentAuth() on a route without authentication');
  return req.auth;
}

export const currentUser = (req: Authenticated): AuthUser => currentAuth(req).user;

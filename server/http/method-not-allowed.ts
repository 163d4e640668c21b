import { isAppRoute, type AppRoute, type AppRouter } from '@ts-rest/core';
import type { RequestHandler, Response } from 'express';
import { routeAccess } from '../../contract';
import { ANY_METHOD, pathRouter } from './route-table';

function routesOf(router: AppRouter): AppRoute[] {
  return Object.values(router).flatMap((entry) => (isAppRoute(entry) ? [entry] : routesOf(entry)));
}

/** What the 405 handler knows of a path: its template, the methods it has, and whether a token is checked first. */
interface KnownPath {
  path: string;
  allow: string;
  guarded: boolean;
}

/**
 * For a known path asked with a method it does not have (mount after the routes): 405 with
 * `Allow`, and OPTIONS answered with `Allow` (CORS preflights are answered earlier, by cors). On a
 * path whose routes all need a token, the token is checked first, as DRF does: a caller without one
 * gets 401 and learns nothing of the path. Paths are matched as the route table matches them (one
 * tree of paths, a static segment before a parameter), so the path the 405 names is the one the
 * route table found without a route for the method.
 */
export function methodNotAllowed(contract: AppRouter, authenticate: RequestHandler): RequestHandler {
  const routesByPath = new Map<string, AppRoute[]>();
  for (const route of routesOf(contract)) {
    routesByPath.set(route.path, [...(routesByPath.get(route.path) ?? []), route]);
  }
  const paths = pathRouter();
  for (const [path, routes] of routesByPath) {
    const known: KnownPath = {
      path,
      allow: [...routes.map((route) => route.method), 'OPTIONS'].join(', '),
      guarded: !routes.some((route) => routeAccess(route).public),
    };
    paths.on(ANY_METHOD, path, () => {}, known);
  }
  return (req, res, next) => {
    const known = paths.find(ANY_METHOD, req.url)?.store as KnownPath | undefined;
    if (!known) return next();
    // The metrics count the answer under the path's template, as for a route.
    req.route = { path: known.path };
    const answer = () => (req.method === 'OPTIONS' ? void res.set('Allow', known.allow).status(204).end() : refuseMethod(res, req.method, known.allow));
    if (!known.guarded) return answer();
    authenticate(req, res, (error?: unknown) => (error === undefined || error === null ? answer() : next(error)));
  };
}

function refuseMethod(res: Response, method: string, allow: string): void {
  res.set('Allow', allow).status(405).json({ detail: `Method "${method}" not allowed.` });
}

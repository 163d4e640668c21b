import { isAppRoute, type AppRoute, type AppRouter } from '@ts-rest/core';
import { Router, type RequestHandler, type Response } from 'express';
import { routeAccess } from '../../contract';

function routesOf(router: AppRouter): AppRoute[] {
  return Object.values(router).flatMap((entry) => (isAppRoute(entry) ? [entry] : routesOf(entry)));
}

/**
 * For a known path asked with a method it does not have (mount after the routes): 405 with
 * `Allow`, and OPTIONS answered with `Allow` (CORS preflights are answered earlier, by cors). On a
 * path whose routes all need a token, the token is checked first, as DRF does: a caller without one
 * gets 401 and learns nothing of the path.
 */
export function methodNotAllowed(contract: AppRouter, authenticate: RequestHandler): Router {
  const routesByPath = new Map<string, AppRoute[]>();
  for (const route of routesOf(contract)) {
    routesByPath.set(route.path, [...(routesByPath.get(route.path) ?? []), route]);
  }
  const router = Router();
  for (const [path, routes] of routesByPath) {
    const allow = [...routes.map((route) => route.method), 'OPTIONS'].join(', ');
    const guards = routes.some((route) => routeAccess(route).public) ? [] : [authenticate];
    router.all(path, ...guards, (req, res) => (req.method === 'OPTIONS' ? res.set('Allow', allow).status(204).end() : refuseMethod(res, req.method, allow)));
  }
  return router;
}

function refuseMethod(res: Response, method: string, allow: string): void {
  res.set('Allow', allow).status(405).json({ detail: `Method "${method}" not allowed.` });
}

import { isAppRoute, type AppRoute, type AppRouter } from '@ts-rest/core';
import { Router } from 'express';

function routesOf(router: AppRouter): AppRoute[] {
  return Object.values(router).flatMap((entry) => (isAppRoute(entry) ? [entry] : routesOf(entry)));
}

/** 405 with `Allow` for a known path asked with a method it does not have (mount after the routes). */
export function methodNotAllowed(contract: AppRouter): Router {
  const methodsByPath = new Map<string, string[]>();
  for (const { path, method } of routesOf(contract)) {
    methodsByPath.set(path, [...(methodsByPath.get(path) ?? []), method]);
  }
  const router = Router();
  for (const [path, methods] of methodsByPath) {
    const allow = methods.join(', ');
    router.all(path, (req, res, next) => {
      if (req.method === 'OPTIONS') return next();
      res.status(405).set('Allow', allow).json({ detail: `Method "${req.method}" not allowed.` });
    });
  }
  return router;
}

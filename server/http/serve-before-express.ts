import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, NextFunction } from 'express';

/** Serves a request, or hands it on untouched by calling `toExpress`. */
export type RouteBeforeExpress = (req: IncomingMessage, res: ServerResponse, toExpress: () => void) => void;

type Handle = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

/**
 * Lets `route` take a request before express sees it: an express app, called as a function (by
 * node's server, supertest, or an app it is mounted in), runs its `handle`, which this wraps.
 */
export function serveBeforeExpress(app: Express, route: RouteBeforeExpress): void {
  const expressApp = app as unknown as { handle: Handle };
  const handle = expressApp.handle.bind(app);
  expressApp.handle = (req, res, next) => route(req, res, () => handle(req, res, next));
}

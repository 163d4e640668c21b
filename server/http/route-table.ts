import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import FindMyWay, { type HTTPVersion } from 'find-my-way';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The routes of one path, by method. */
type RoutesOfPath = Partial<Record<string, Route>>;

/** What a route runs, in order, as express would run the handlers given to app.get(path, …). */
interface Route {
  handlers: RequestHandler[];
  /** What express leaves in `req.route` for a route it runs: its path (the metrics' label, for a route outside the contract). */
  matched: { path: string };
}

const NO_QUERY = {};

/** The one method under which a path tree keeps every path (see RouteTable). */
export const ANY_METHOD = 'GET';

/**
 * A find-my-way router matching paths as express does by default: case-insensitive, a missing
 * trailing slash allowed; a path whose percent-escapes do not decode is found with no store. For a
 * tree of paths, each registered under ANY_METHOD (the route table, the 405 handler).
 */
export function pathRouter() {
  return FindMyWay<HTTPVersion.V1>({
    caseSensitive: false,
    ignoreTrailingSlash: true,
    // Express matches a segment of any length; the schema then says whether it names anything.
    maxParamLength: 16_384,
    // express has parsed the query already (req.query).
    querystringParser: () => NO_QUERY,
    // Makes find() answer an undecodable path with a route of no store (see RouteTable.middleware()).
    onBadUrl: () => {},
  });
}

/**
 * The contract's routes in one lookup table, as a single express middleware. Express tries the
 * routes of an app one after another, a regular expression each: with the ~70 routes of the
 * contract that walk was the largest cost a request paid beyond bare express (about 16 µs a request
 * in a CPU profile of the flag check under load). find-my-way (fastify's router) finds the route in one descent of a radix
 * tree; its handlers then run in order, as in express, and whatever they pass to `next` goes on to
 * the app's error handler. A path or method it does not know goes on down the app (405, 404).
 *
 * It takes the routes the way an express app does (get/post/…/use), so ts-rest's
 * createExpressEndpoints registers the contract into it unchanged. Matching follows express's
 * defaults: case-insensitive, a missing trailing slash allowed; a path whose percent-escapes do not
 * decode names nothing (404, as express answers a parameter it cannot decode).
 *
 * The path is matched first, whatever the method, and the method then picks the route of that path
 * (as Django matches a URL before its view looks at the method): `GET /api/notifications/test/`
 * names the POST-only `test/`, which goes on to the 405 handler — it is not `GET
 * /api/notifications/:id/` with the id "test", a 404. (find-my-way keeps a tree per method, where a
 * parameter of one method's route would take a static segment that only another method has.)
 *
 * Unlike express, a GET route does not answer HEAD: HEAD goes on to the 405 handler. That is on
 * purpose for the long-poll and the stream, whose GET marks what it answers delivered: a `curl -I`
 * must not.
 */
export class RouteTable {
  private readonly router = pathRouter();
  private readonly paths = new Map<string, RoutesOfPath>();
  private readonly errorHandlers: ErrorRequestHandler[] = [];

  get = (path: string, ...handlers: RequestHandler[]) => this.add('GET', path, handlers);
  post = (path: string, ...handlers: RequestHandler[]) => this.add('POST', path, handlers);
  put = (path: string, ...handlers: RequestHandler[]) => this.add('PUT', path, handlers);
  patch = (path: string, ...handlers: RequestHandler[]) => this.add('PATCH', path, handlers);
  delete = (path: string, ...handlers: RequestHandler[]) => this.add('DELETE', path, handlers);

  /** An error handler of the routes (ts-rest adds its validation-error handler this way). */
  use = (handler: ErrorRequestHandler) => {
    this.errorHandlers.push(handler);
  };

  /** The middleware that serves the table's routes. */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const found = this.router.find(ANY_METHOD, req.url);
      if (!found) return next();
      if (!found.store) return next(new URIError(`The path of ${req.url} does not percent-decode`));
      const route = (found.store as RoutesOfPath)[req.method];
      if (!route) return next();
      req.params = found.params as Request['params'];
      req.route = route.matched;
      this.run(route.handlers, req, res, next);
    };
  }

  private add(method: Method, path: string, handlers: RequestHandler[]): void {
    let routes = this.paths.get(path);
    if (!routes) {
      routes = Object.create(null) as RoutesOfPath;
      this.paths.set(path, routes);
      this.router.on(ANY_METHOD, path, () => {}, routes);
    }
    routes[method] = { handlers, matched: { path } };
  }

  /** The handlers in order, each calling the next with `next()`; an error skips to the error handlers. */
  private run(handlers: RequestHandler[], req: Request, res: Response, done: NextFunction): void {
    let index = 0;
    const next: NextFunction = (error?: unknown) => {
      if (error !== undefined && error !== null) return this.fail(error, req, res, done);
      const handler = handlers[index++];
      if (!handler) return done();
      try {
        handler(req, res, next);
      } catch (thrown) {
        this.fail(thrown, req, res, done);
      }
    };
    next();
  }

  private fail(error: unknown, req: Request, res: Response, done: NextFunction): void {
    let index = 0;
    const next: NextFunction = (passed?: unknown) => {
      const handler = this.errorHandlers[index++];
      if (!handler || passed === undefined || passed === null) return done(passed);
      try {
        handler(passed, req, res, next);
      } catch (thrown) {
        next(thrown);
      }
    };
    next(error);
  }
}

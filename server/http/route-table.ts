import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import FindMyWay, { type HTTPVersion } from 'find-my-way';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a route runs, in order, as express would run the handlers given to app.get(path, …). */
interface Route {
  handlers: RequestHandler[];
  /** What express leaves in `req.route` for a route it runs: its path (the metrics' label, for a route outside the contract). */
  matched: { path: string };
}

const NO_QUERY = {};

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
 * Unlike express, a GET route does not answer HEAD: HEAD goes on to the 405 handler. That is on
 * purpose for the long-poll and the stream, whose GET marks what it answers delivered: a `curl -I`
 * must not.
 */
export class RouteTable {
  private readonly router = FindMyWay<HTTPVersion.V1>({
    caseSensitive: false,
    ignoreTrailingSlash: true,
    // Express matches a segment of any length; the schema then says whether it names anything.
    maxParamLength: 16_384,
    // express has parsed the query already (req.query).
    querystringParser: () => NO_QUERY,
    // Makes find() answer an undecodable path with a route of no store (see middleware()).
    onBadUrl: () => {},
  });
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
      const found = this.router.find(req.method as Method, req.url);
      if (!found) return next();
      if (!found.store) return next(new URIError(`The path of ${req.url} does not percent-decode`));
      const route = found.store as Route;
      req.params = found.params as Request['params'];
      req.route = route.matched;
      this.run(route.handlers, req, res, next);
    };
  }

  private add(method: Method, path: string, handlers: RequestHandler[]): void {
    const route: Route = { handlers, matched: { path } };
    this.router.on(method, path, () => {}, route);
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

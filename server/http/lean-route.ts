import type { IncomingMessage } from 'node:http';
import type { AppRoute } from '@ts-rest/core';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { routeAccess } from '../../contract';
import type { AuthenticatedSession, SessionsService } from '../auth/sessions.service';
import { answerFor, INTERNAL_ERROR, type HttpAnswer } from './error-handler';
import { writeJson } from './json-answer';
import { fixedHeadersOf } from './security-headers';
import { answeredByDeadline, type RequestDeadline } from './request-deadline';
import { requestLogger, type TrackRequest } from './request-logging';
import type { RouteBeforeExpress } from './serve-before-express';

/**
 * One request a lean route serves: node's request and response (express's methods are not there),
 * the request's session in `req.auth` as authentication leaves it for an express route.
 */
export interface LeanExchange<Plain> {
  req: Request;
  res: Response;
  userId: number;
  /** What `plain` read of the request. */
  plain: Plain;
  /** Sets the headers express would have set before the route ran; call it just before the head is written. */
  setHeaders(): void;
  /** Writes a JSON answer (http/json-answer.ts) with the headers express would have set before the route ran. */
  writeJson(status: number, body: unknown): void;
  /** A logger whose lines carry the request (made on first use). */
  log(): Logger;
}

/**
 * A route served before express (see leanRoutes): the plain form of one of the contract's routes.
 * (The contract's express route stays, and answers every request this one leaves to it.)
 */
export interface LeanRoute<Plain = unknown> {
  /** The contract's route: the metrics count the requests served here under its path. */
  route: AppRoute;
  /** What the route reads of a request plain enough to be served here; undefined leaves it to express. */
  plain(req: IncomingMessage): Plain | undefined;
  /** Whether the user may be served now; false leaves the request to express (which refuses it). */
  admits(userId: number): boolean;
  /** Answers; a failure before the head is written is answered as express's error handler would. */
  serve(exchange: LeanExchange<Plain>): Promise<void>;
}

export interface LeanRouteDeps {
  sessions: SessionsService;
  logger: Logger;
  /** The request logging's id, access line and observers (metrics), as express runs them. */
  track: TrackRequest;
  /** The middleware that set headers on every express answer before a route runs, in express's order. */
  headers: RequestHandler[];
  /** The app's request deadline: a lean route that does not wait by design is on it, as through express. */
  deadline: RequestDeadline;
}

/**
 * Routes served before express: the real-time ones (notifications/lean-routes.ts) and the hot reads
 * (lean-contract-get.ts). A waiting long-poll or an open stream is most of what a busy instance
 * holds, and through express each kept a few KB more heap than it needs (express gives every
 * request and response a hidden class of their own when it swaps their prototypes, and keeps its
 * router's closures for as long as the request lives; ts-rest adds its own); their requests are
 * also half of all those a delivery takes, and a small read paid about a third of its CPU for
 * express's per-request machinery (bench/results/ has the figures).
 *
 * Only the plain request comes this way: the route's method and path exactly as the contract spells
 * them, no If-None-Match, what the route's `plain` accepts, a token that authenticates, and room for
 * the user. Everything else — a HEAD, another spelling of the path, a query to refuse, a bad token,
 * one connection too many, a conditional GET — goes on to express untouched, which answers as it
 * always has (405, 400, 401, 429, 304 …). What is answered here is the express route's answer to the
 * byte: the same request tracking and deadline, the same header middleware (helmet, CORS) in the
 * same order, the route's own answer code shared with its express handler, JSON written as express
 * writes it, and errors through the error handler's answerFor (test/lean-routes.test.ts compares
 * the two paths).
 */
export function leanRoutes(deps: LeanRouteDeps, routes: LeanRoute[]): RouteBeforeExpress {
  // Only a route any signed-in user may call can be served here: the checks are authentication's.
  for (const { route } of routes) {
    const access = routeAccess(route);
    if (access.public || access.adminOnly) throw new Error(`${route.path} cannot be a lean route: it is not for any signed-in user`);
    if (route.method !== 'GET') throw new Error(`${route.path} cannot be a lean route: only GETs are served before express`);
  }
  const onDeadline = new Set(routes.filter(({ route }) => !deps.deadline.waitsByDesign(route.path)));
  const fixedHead = fixedHeadsOf(deps.headers);
  return (req, res, toExpress) => {
    if (!isPlainGet(req)) return toExpress();
    for (const route of routes) {
      const plain = route.plain(req);
      if (plain === undefined) continue;
      const serve = (session: AuthenticatedSession) => {
        if (!route.admits(session.user.id)) return toExpress();
        (req as Request).auth = session;
        answer(deps, route, req as Request, res as Response, plain, onDeadline.has(route), fixedHead);
      };
      // A refused token is express's to answer, with the same 401 as on every route (and without
      // asking the database again).
      const refused = (error: unknown) => {
        (req as Request).authRefusal = error;
        toExpress();
      };
      return deps.sessions.whenAuthenticated(req.headers.authorization, serve, refused);
    }
    toExpress();
  };
}

/**
 * The query string of a request for exactly `path` ('' when it has none); undefined for any other
 * path. (leanRoutes passes on only plain GETs.)
 */
export function plainGetQuery(req: IncomingMessage, path: string): string | undefined {
  const url = req.url ?? '';
  const queryAt = url.indexOf('?');
  if ((queryAt < 0 ? url : url.slice(0, queryAt)) !== path) return undefined;
  return queryAt < 0 ? '' : url.slice(queryAt + 1);
}

/** A GET with no If-None-Match (express may answer that 304). A GET's body is never read (json-body.ts). */
const isPlainGet = (req: IncomingMessage): boolean => req.method === 'GET' && req.headers['if-none-match'] === undefined;

/**
 * The headers the header middleware set on every answer, as a flat list, when none of them depends
 * on the request (no CORS configured); undefined otherwise.
 */
function fixedHeadsOf(middleware: RequestHandler[]): readonly string[] | undefined {
  const heads = middleware.map(fixedHeadersOf);
  return heads.every((head) => head !== undefined) ? heads.flat() : undefined;
}

/** Serves the request; a failure is answered as the error handler would. (No async function of its own: see answerLongPoll.) */
function answer(
  deps: LeanRouteDeps,
  lean: LeanRoute,
  req: Request,
  res: Response,
  plain: unknown,
  onDeadline: boolean,
  fixedHead: readonly string[] | undefined,
): void {
  // The route, as ts-rest would have noted it: the metrics count the request under its template.
  (req as Request & { tsRestRoute?: AppRoute }).tsRestRoute = lean.route;
  deps.track(req, res);
  const log = () => requestLogger(deps.logger, req);
  const setHeaders = () => setExpressHeaders(deps.headers, req, res);
  // The same headers, written with the head in one go where they are the same for every request.
  const writeJsonAnswer = fixedHead
    ? (status: number, body: unknown) => writeJson(res, status, body, ['X-Request-Id', req.id, ...fixedHead])
    : (status: number, body: unknown) => {
        setHeaders();
        writeJson(res, status, body);
      };
  if (onDeadline) deps.deadline.watch(res, { log, write: (deadlineAnswer) => writeAnswer(res, deadlineAnswer, setHeaders) });
  const failed = (error: unknown) => {
    try {
      writeError(res, error, setHeaders, log);
    } catch (failure) {
      log().error({ err: failure, cause: error }, 'answering the error failed');
      res.destroy();
    }
  };
  try {
    lean.serve({ req, res, userId: req.auth!.user.id, plain, setHeaders, writeJson: writeJsonAnswer, log }).catch(failed);
  } catch (error) {
    failed(error);
  }
}

/**
 * The headers express would have set before the route ran, in its order: X-Request-Id, then what the
 * middleware set (helmet, cors on a GET: each goes on at once). Set when the head is written, not
 * while a poll waits: a waiting request holds no headers.
 */
function setExpressHeaders(middleware: RequestHandler[], req: Request, res: Response): void {
  res.setHeader('X-Request-Id', req.id);
  for (const set of middleware) {
    let passed = false;
    set(req, res, (error?: unknown) => {
      if (error) throw error;
      passed = true;
    });
    if (!passed) throw new Error('a header middleware of a lean route did not go on at once');
  }
}

/** What the error handler would answer, written the way it would write it. */
function writeError(res: Response, error: unknown, setHeaders: () => void, log: () => Logger): void {
  // As the error handler: the deadline has answered already, and the connection stays usable.
  if (answeredByDeadline(res)) return void log().warn({ err: error }, 'late end of a request answered by its deadline');
  const answer = answerFor(error);
  if (!answer) log().error({ err: error }, 'request failed');
  if (res.headersSent) return void res.destroy();
  writeAnswer(res, answer ?? INTERNAL_ERROR, setHeaders);
}

/** An answer of the app's own (an error's, the deadline's), with the headers express would have set. */
function writeAnswer(res: Response, { status, body, headers = {} }: HttpAnswer, setHeaders: () => void): void {
  // Anew: an answer that failed may have set some of them.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  setHeaders();
  writeJson(res, status, body, Object.entries(headers).flat());
}

import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { contract } from '../../contract';
import type { AuthenticatedSession, SessionsService } from '../auth/sessions.service';
import { assertOnContract } from '../http/answer-check';
import { answerFor, INTERNAL_ERROR } from '../http/error-handler';
import { writeJson } from '../http/json-answer';
import { requestLogger, type TrackRequest } from '../http/request-logging';
import type { RouteBeforeExpress } from '../http/serve-before-express';
import type { DeliveryHub } from '../realtime/delivery-hub';
import { answerLongPoll, type LongPollAnswerDeps } from './long-poll-answer';

export interface LeanLongPollDeps extends LongPollAnswerDeps {
  sessions: SessionsService;
  hub: DeliveryHub;
  logger: Logger;
  /** The request logging's id, access line and observers (metrics), as express runs them. */
  track: TrackRequest;
  /** The middleware that set headers on every express answer before a route runs, in express's order. */
  headers: RequestHandler[];
  /** Hold the answer to the contract, as the test apps do for every express route. */
  checkAnswers: boolean;
}

const route = contract.notifications.longPoll;
/** The query the lean path reads itself: `timeout=N` or none. Anything else is express's parser's. */
const PLAIN_QUERY = /^(?:timeout=(\d{1,3}))?$/;

/**
 * GET /api/notifications/long-poll/ served before express. A waiting long-poll is most of what a
 * busy instance holds: through express, ts-rest and the middleware chain it kept 14.5 KB of heap
 * per request (express alone gives each request and response a hidden class of its own when it
 * swaps their prototypes), against 8.2 KB here; and it spends less CPU on the two requests of every
 * delivery (bench/results/notifications.md).
 *
 * Only the plain request comes this way: GET, the path exactly as the contract spells it, no query
 * but `timeout=N` that the contract's schema accepts, no If-None-Match, a token that authenticates,
 * and room under the user's cap on connections. Everything else — a HEAD, another spelling of the
 * path, a query to refuse, a bad token, one connection too many, a conditional GET — goes on to
 * express untouched, which answers as it always has (405, 400, 401, 429, 304 …). The answer given
 * here is the express route's to the byte: the same request logging, security and CORS headers (the
 * same middleware), body (answerLongPoll) and JSON writing (writeJson), and errors through the same
 * answerFor (test/long-poll-lean-path.test.ts compares the two).
 */
export function leanLongPoll(deps: LeanLongPollDeps): RouteBeforeExpress {
  return (req, res, toExpress) => {
    const timeoutSeconds = plainTimeoutOf(req);
    if (timeoutSeconds === undefined) return toExpress();
    const serve = (session: AuthenticatedSession) => {
      if (!deps.hub.hasRoomFor(session.user.id)) return toExpress();
      void answer(deps, req as Request, res as Response, session.user.id, timeoutSeconds);
    };
    // A token this process knows goes on at once; any other is asked of the database first (and a
    // refused one is express's to answer, with the same 401 as on every route).
    const known = deps.sessions.knownSession(req.headers.authorization);
    if (known) serve(known);
    else deps.sessions.authenticate(req.headers.authorization).then(serve, toExpress);
  };
}

/** The timeout of a plain long-poll request, in seconds; undefined for any other request. */
function plainTimeoutOf(req: IncomingMessage): number | undefined {
  if (req.method !== 'GET' || req.headers['if-none-match'] !== undefined) return undefined;
  const url = req.url ?? '';
  const queryAt = url.indexOf('?');
  if ((queryAt < 0 ? url : url.slice(0, queryAt)) !== route.path) return undefined;
  const plain = PLAIN_QUERY.exec(queryAt < 0 ? '' : url.slice(queryAt + 1));
  if (!plain) return undefined;
  const query = route.query.safeParse(plain[1] === undefined ? {} : { timeout: plain[1] });
  return query.success ? query.data.timeout : undefined;
}

async function answer(deps: LeanLongPollDeps, req: Request, res: Response, userId: number, timeoutSeconds: number): Promise<void> {
  // The route, as ts-rest would have noted it: the metrics count the request under its template.
  (req as Request & { tsRestRoute?: unknown }).tsRestRoute = route;
  deps.track(req, res);
  const log = () => requestLogger(deps.logger, req);
  try {
    const body = await answerLongPoll(deps, userId, timeoutSeconds * 1000, res, (error) =>
      log().error({ err: error }, 'marking delivered failed'),
    );
    if (deps.checkAnswers) assertOnContract(route, 200, body);
    setHeaders(deps.headers, req, res);
    writeJson(res, 200, body);
  } catch (error) {
    try {
      writeError(res, error, () => setHeaders(deps.headers, req, res), log);
    } catch (failure) {
      log().error({ err: failure, cause: error }, 'answering the error failed');
      res.destroy();
    }
  }
}

/**
 * The headers express would have set before the route ran, in its order: X-Request-Id, then what the
 * middleware set (helmet, cors on a GET: each goes on at once). Set when the answer is written, not
 * while the poll waits: a waiting request holds no headers.
 */
function setHeaders(middleware: RequestHandler[], req: Request, res: Response): void {
  res.setHeader('X-Request-Id', req.id);
  for (const set of middleware) {
    let passed = false;
    set(req, res, (error?: unknown) => {
      if (error) throw error;
      passed = true;
    });
    if (!passed) throw new Error('a header middleware of the lean long-poll did not go on at once');
  }
}

/** What the error handler would answer, written the way it would write it. */
function writeError(res: Response, error: unknown, setHeaders: () => void, log: () => Logger): void {
  const answer = answerFor(error);
  if (!answer) log().error({ err: error }, 'request failed');
  if (res.headersSent) return;
  const { status, body, headers } = answer ?? INTERNAL_ERROR;
  // Anew: an answer that failed may have set some of them.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  setHeaders();
  writeJson(res, status, body, headers);
}

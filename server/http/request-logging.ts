import { randomUUID } from 'node:crypto';
import type { Express, Request, Response } from 'express';
import type { Logger } from 'pino';
import { onClosed } from './response-lifecycle';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The request id: the caller's X-Request-Id when it is sane, else a new UUID. */
      id: string;
      /** A logger whose every line carries the request; made on first use. */
      log: Logger;
    }
  }
}

const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * An access line per request, and `req.log` for the lines a request writes itself, all with the
 * request id, which is echoed in the response's X-Request-Id (so a trace crosses services).
 * `req.log` is made only when a request logs something: a long-poll held open keeps no logger of
 * its own, and most requests only ever write their access line. (pino-http made a child logger per
 * request up front, with the request serialized into it: 1.1 KB of heap for each waiting long-poll.)
 */
/** Told when a request has ended (answered, or abandoned by its client), with how long it took. */
export type CompletionObserver = (req: Request, res: Response, ms: number) => void;

/**
 * `observers` are told of each request's end on the same one listener as the access line (the
 * metrics, the deadline): a listener per request and concern cost a few per cent of a small request.
 */
export function useRequestLogging(app: Express, logger: Logger, observers: CompletionObserver[] = []): TrackRequest {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request) {
      const log = requestLogger(logger, this);
      Object.defineProperty(this, 'log', { value: log });
      return log;
    },
  });
  const track: TrackRequest = (req, res) => {
    req.id = requestIdOf(req);
    const started = performance.now();
    const completed = () => {
      const ms = performance.now() - started;
      logCompletion(logger, req, res, ms);
      for (const observe of observers) observe(req, res, ms);
    };
    // At once for a client that left before (a lean route tracks a request only after its token was
    // looked up); on its request's 'close' for an answer queued behind another (pipelined), which
    // hears no 'close' of its own (see http/response-lifecycle.ts).
    onClosed(res, completed);
  };
  app.use((req, res, next) => {
    // An app mounted in another one: the outer app logs the request already.
    if (!req.id) {
      track(req, res);
      res.setHeader('X-Request-Id', req.id);
    }
    next();
  });
  return track;
}

/**
 * Gives a request its id and its access line and observers at its end: what the logging middleware
 * does, for a route served before express too (the lean routes, http/lean-route.ts), which passes node's
 * request and response: only their own fields, and `id`, are read of them. Echoing the id in
 * X-Request-Id, the first header of every answer, is the caller's.
 */
export type TrackRequest = (req: Request, res: Response) => void;

/** A logger whose every line carries the request. */
export const requestLogger = (logger: Logger, req: Request): Logger => logger.child({ req: requestSummary(req) });

function requestIdOf(req: Request): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

// No headers: they carry tokens, and the id ties a line to everything else about the request.
const requestSummary = (req: Request) => ({
  id: req.id,
  method: req.method,
  // A request served before express has no originalUrl: its url is the original.
  url: req.originalUrl ?? req.url,
  remoteAddress: req.socket.remoteAddress,
});

function logCompletion(logger: Logger, req: Request, res: Response, ms: number): void {
  const errored = res.writableFinished && res.statusCode >= 500;
  // A line the level would drop is not even built (LOG_LEVEL=warn: only the 5xx lines).
  if (!logger.isLevelEnabled(errored ? 'error' : 'info')) return;
  const line = { req: requestSummary(req), res: { statusCode: res.statusCode }, responseTime: Math.round(ms) };
  if (!res.writableFinished) logger.info(line, 'request aborted by the client');
  else if (errored) logger.error(line, 'request errored');
  else logger.info(line, 'request completed');
}

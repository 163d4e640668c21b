import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction } from 'express';
import { UnsupportedMediaType } from './error-handler';

/** What the check reads of a request, whether a contract route's or a plain express one's. */
interface IncomingRequest {
  method: string;
  headers: IncomingHttpHeaders;
  is(type: string): string | false | null;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH']);

/** A request that sends content: a chunked body, or a Content-Length above zero. */
const sendsContent = (req: IncomingRequest) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/**
 * Middleware (after authentication, so a caller without a token learns only that): a write whose
 * body is not JSON is 415, as in DRF, instead of being read as an empty object and answered with
 * "field required" errors that hide the real mistake (a curl -d without the JSON content type).
 */
export function requireJsonBody(req: IncomingRequest, _res: unknown, next: NextFunction): void {
  if (WRITES.has(req.method) && sendsContent(req) && !req.is('application/json')) {
    return next(new UnsupportedMediaType(req.headers['content-type'] ?? ''));
  }
  next();
}

import type { IncomingHttpHeaders } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ValidationFailed } from '../errors';
import { BODY_LIMIT, UnsupportedMediaType } from './error-handler';

/** What the check reads of a request, whether a contract route's or a plain express one's. */
interface IncomingRequest {
  method: string;
  headers: IncomingHttpHeaders;
  is(type: string): string | false | null;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH']);

/** The methods whose body the API reads; any other method's body is ignored, never parsed. */
export const takesBody = (method: string) => WRITES.has(method.toUpperCase());

/** A request that sends content: a chunked body, or a Content-Length above zero. */
const sendsContent = (req: IncomingRequest) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/**
 * Middleware (after authentication, so a caller without a token learns only that): a write whose
 * body is not JSON is 415, as in DRF, instead of being read as an empty object and answered with
 * "field required" errors that hide the real mistake (a curl -d without the JSON content type).
 */
export function requireJsonBody(req: IncomingRequest, _res: unknown, next: NextFunction): void {
  if (takesBody(req.method) && sendsContent(req) && !req.is('application/json')) {
    return next(new UnsupportedMediaType(req.headers['content-type'] ?? ''));
  }
  next();
}

/**
 * Middleware (after authentication, as requireJsonBody: a caller refused learns only that): parses
 * the JSON body of writes. Not strict: a JSON string or number body is valid JSON of the wrong
 * shape, which the contract answers with non_field_errors, not a parse error. The body of a GET or
 * DELETE means nothing here, so it is not read: it can neither be too large nor malformed.
 */
export function parseJsonBody(): (req: IncomingRequest, res: unknown, next: NextFunction) => void {
  const parse: RequestHandler = express.json({ limit: BODY_LIMIT, strict: false });
  // Typed by what it reads, like requireJsonBody, so that it also runs among a contract's middleware.
  return (req, res, next) => (takesBody(req.method) ? parse(req as Request, res as Response, next) : next());
}

/**
 * Middleware after requireJsonBody: a body holding a NUL character in any string is refused, 400 on
 * its top-level field ("Null characters are not allowed.", as DRF's CharField says). Postgres text
 * cannot hold one — the statement failed, a 500 — where SQLite stored it; no field of the API needs it.
 */
export function refuseNullCharacters(req: { body?: unknown }, _res: unknown, next: NextFunction): void {
  const field = fieldHoldingNull(req.body);
  next(field === undefined ? undefined : ValidationFailed.field(field, 'Null characters are not allowed.'));
}

/** The top-level field of the body whose value holds a NUL somewhere (non_field_errors for a bare string). */
function fieldHoldingNull(body: unknown): string | undefined {
  if (typeof body === 'string') return body.includes('\0') ? 'non_field_errors' : undefined;
  if (typeof body !== 'object' || body === null) return undefined;
  for (const [field, value] of Object.entries(body)) if (holdsNull(value)) return field;
  return undefined;
}

/** Whether a string anywhere in `value`, a key included, holds a NUL. A loop, not recursion: bodies may nest deeply. */
function holdsNull(value: unknown): boolean {
  const pending = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') {
      if (next.includes('\0')) return true;
    } else if (typeof next === 'object' && next !== null) {
      for (const [key, inner] of Object.entries(next)) {
        if (key.includes('\0')) return true;
        pending.push(inner);
      }
    }
  }
  return false;
}

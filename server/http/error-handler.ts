import { STATUS_CODES } from 'node:http';
import { RequestValidationError } from '@ts-rest/express';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import {
  Conflict,
  DomainError,
  Forbidden,
  InvalidOperation,
  NotFound,
  NotPossibleNow,
  TooManyRequests,
  Unauthenticated,
  ValidationFailed,
} from '../errors';
import { isDatabaseUnavailable, isTransientConflict } from '../../db/errors';
import { fieldErrorsOf } from './field-errors';
import { answeredByDeadline } from './request-deadline';

export const BODY_LIMIT = '100kb';

/** A body in a format the API does not read (only JSON is). */
export class UnsupportedMediaType extends Error {
  constructor(readonly contentType: string) {
    super(`Unsupported media type "${contentType}" in request.`);
  }
}

export interface HttpAnswer {
  status: number;
  body: object;
  headers?: Record<string, string>;
}

const NOT_FOUND: HttpAnswer = { status: 404, body: { detail: 'Not found.' } };

/** Postgres unreachable or not answering: the client may try again (a write whose answer this is may or may not have happened: Idempotency-Key is for that). */
const DATABASE_UNAVAILABLE: HttpAnswer = {
  status: 503,
  body: { detail: 'The database is not available at the moment; try again shortly.' },
  headers: { 'Retry-After': '2' },
};
/** A query that met a conflicting one (a deadlock, a lock held elsewhere): the same request again will do. */
const DATABASE_CONFLICT: HttpAnswer = {
  status: 503,
  body: { detail: 'The request met a conflicting one in the database; try again.' },
  headers: { 'Retry-After': '1' },
};
/** What any failure the client could not have caused is answered with. */
export const INTERNAL_ERROR: HttpAnswer = { status: 500, body: { detail: 'Internal server error' } };
const INTERNAL_ERROR_JSON = JSON.stringify(INTERNAL_ERROR.body);

/**
 * The one place where what went wrong becomes a status code and a body. Whatever fails while the
 * answer is built or sent (a hostile value in the error, a body that cannot be serialized) still
 * ends as the JSON 500: never as express's own HTML page, which shows the stack.
 */
export const errorHandler: ErrorRequestHandler = (error, req, res, next) => {
  // The work of a request its deadline answered has ended (in an error, if only that of answering
  // twice): nothing to say any more, and the connection stays usable.
  if (answeredByDeadline(res)) return req.log.warn({ err: error }, 'late end of a request answered by its deadline');
  // Too late for another answer: express's final handler closes the connection.
  if (res.headersSent) return next(error);
  try {
    const answer = answerFor(error);
    if (!answer) {
      req.log.error({ err: error }, 'request failed');
      return sendInternalError(res);
    }
    res.status(answer.status).set(answer.headers ?? {}).json(answer.body);
  } catch (failure) {
    req.log.error({ err: failure, cause: error }, 'building the error answer failed');
    if (!res.headersSent) sendInternalError(res);
  }
};

function sendInternalError(res: Response): void {
  res.status(500).type('application/json').send(INTERNAL_ERROR_JSON);
}

/** The answer an error gets; null for a failure of ours (the 500, which is logged). */
export function answerFor(error: unknown): HttpAnswer | null {
  if (error instanceof RequestValidationError) {
    // A path that does not name a real object is not found, whatever its shape.
    if (error.pathParams) return NOT_FOUND;
    const invalid = error.body ?? error.query ?? error.headers;
    return invalid ? { status: 400, body: fieldErrorsOf(invalid) } : null;
  }
  if (error instanceof DomainError) return answerForDomainError(error);
  if (error instanceof UnsupportedMediaType) return { status: 415, body: { detail: error.message } };
  // express could not percent-decode a path parameter (`%`, `%E0%A4%A`, `%FF`): as any malformed
  // id, the path names no object.
  if (error instanceof URIError) return NOT_FOUND;
  if (isDatabaseUnavailable(error)) return DATABASE_UNAVAILABLE;
  if (isTransientConflict(error)) return DATABASE_CONFLICT;
  return answerForClientError(error);
}

function answerForDomainError(error: DomainError): HttpAnswer | null {
  if (error instanceof ValidationFailed) return { status: 400, body: error.fields };
  if (error instanceof NotFound) return { status: 404, body: { detail: error.message } };
  if (error instanceof InvalidOperation) return { status: 400, body: { error: error.message } };
  if (error instanceof NotPossibleNow) return { status: 400, body: { detail: error.message } };
  if (error instanceof Forbidden) return { status: 403, body: { detail: error.message } };
  if (error instanceof Conflict) return { status: 409, body: { detail: error.message } };
  if (error instanceof Unauthenticated) {
    return { status: 401, body: { detail: error.message }, headers: { 'WWW-Authenticate': 'Token' } };
  }
  if (error instanceof TooManyRequests) {
    return {
      status: 429,
      body: { detail: error.message },
      headers: { 'Retry-After': String(error.retryAfterSeconds) },
    };
  }
  return null;
}

/** What the body parser says of a body it could not read, by its error `type`. */
const BODY_ERRORS = new Map([
  ['entity.parse.failed', 'JSON parse error: the body is not valid JSON.'],
  ['entity.too.large', `Request body too large: the limit is ${BODY_LIMIT}.`],
  ['encoding.unsupported', 'Unsupported content encoding: send the body as identity, gzip or deflate.'],
  ['charset.unsupported', 'Unsupported charset: send the body as UTF-8.'],
]);

/**
 * Errors raised by express and its body parser carry a 4xx `status` (or `statusCode`) meant for the
 * client: a body whose Content-Encoding does not match it (400), too large (413), in an encoding or
 * charset the server does not read (415). Honour the status with a message of our own; their own
 * messages may come from zlib or iconv. Anything else, a 5xx among them, is ours: the JSON 500.
 */
function answerForClientError(error: unknown): HttpAnswer | null {
  if (typeof error !== 'object' || error === null) return null;
  const { type, status, statusCode, code } = error as Record<string, unknown>;
  const clientStatus = [status, statusCode].find(isClientErrorStatus);
  if (clientStatus === undefined) return null;
  return { status: clientStatus, body: { detail: clientErrorDetail(clientStatus, type, code) } };
}

const isClientErrorStatus = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 400 && (value as number) < 500;

function clientErrorDetail(status: number, type: unknown, code: unknown): string {
  if (typeof type === 'string' && BODY_ERRORS.has(type)) return BODY_ERRORS.get(type)!;
  // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR): the body is not in the encoding its header names.
  if (typeof code === 'string' && code.startsWith('Z_')) return 'The request body could not be decoded with its Content-Encoding.';
  return STATUS_CODES[status] ?? 'Bad request.';
}

export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).json(NOT_FOUND.body);
};

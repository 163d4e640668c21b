import { RequestValidationError } from '@ts-rest/express';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  Conflict,
  DomainError,
  Forbidden,
  InvalidOperation,
  NotFound,
  TooManyRequests,
  Unauthenticated,
  ValidationFailed,
} from '../errors';
import { fieldErrorsOf } from './field-errors';

export const BODY_LIMIT = '100kb';

/** A body in a format the API does not read (only JSON is). */
export class UnsupportedMediaType extends Error {
  constructor(readonly contentType: string) {
    super(`Unsupported media type "${contentType}" in request.`);
  }
}

interface HttpAnswer {
  status: number;
  body: object;
  headers?: Record<string, string>;
}

/** The one place where what went wrong becomes a status code and a body. */
export const errorHandler: ErrorRequestHandler = (error, req, res, next) => {
  if (res.headersSent) return next(error);
  const answer = answerFor(error);
  if (!answer) {
    req.log.error({ err: error }, 'request failed');
    res.status(500).json({ detail: 'Internal server error' });
    return;
  }
  res.status(answer.status).set(answer.headers ?? {}).json(answer.body);
};

function answerFor(error: unknown): HttpAnswer | null {
  if (error instanceof RequestValidationError) {
    // A path that does not name a real object is not found, whatever its shape.
    if (error.pathParams) return { status: 404, body: { detail: 'Not found.' } };
    const invalid = error.body ?? error.query ?? error.headers;
    return invalid ? { status: 400, body: fieldErrorsOf(invalid) } : null;
  }
  if (error instanceof DomainError) return answerForDomainError(error);
  if (error instanceof UnsupportedMediaType) return { status: 415, body: { detail: error.message } };
  return answerForBodyParser(error);
}

function answerForDomainError(error: DomainError): HttpAnswer | null {
  if (error instanceof ValidationFailed) return { status: 400, body: error.fields };
  if (error instanceof NotFound) return { status: 404, body: { detail: error.message } };
  if (error instanceof InvalidOperation) return { status: 400, body: { error: error.message } };
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

/** express.json() errors: they carry `type` and a 4xx `status` meant for the client. */
function answerForBodyParser(error: unknown): HttpAnswer | null {
  const { type, status } = (error ?? {}) as { type?: string; status?: number };
  if (type === 'entity.parse.failed') {
    return { status: 400, body: { detail: 'JSON parse error: the body is not valid JSON.' } };
  }
  if (type === 'entity.too.large') return { status: 413, body: { detail: `Request body too large: the limit is ${BODY_LIMIT}.` } };
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return { status: 415, body: { detail: 'Unsupported content encoding or charset.' } };
  }
  if (type && status && status >= 400 && status < 500) return { status, body: { detail: 'Malformed request body.' } };
  return null;
}

export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).json({ detail: 'Not found.' });
};

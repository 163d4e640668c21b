import { validateResponse, type AppRoute } from '@ts-rest/core';
import type { RequestHandler } from 'express';

/** An answer that is not what the contract says of it. */
export class AnswerOffContract extends Error {
  constructor(route: AppRoute, status: number, problem: string, cause?: unknown) {
    super(`the ${status} answer of ${route.method} ${route.path} ${problem}`, { cause });
    this.name = 'AnswerOffContract';
  }
}

/**
 * Fails (with an error, hence the JSON 500) every JSON answer of a contract route that does not pass
 * the route's response schema; and a success answer also when validating would change it: a key it
 * would strip, a default it would fill in, another key order. The server does not validate answers
 * in production (for 50 feature flags that cost a quarter of the request); every test app runs this
 * check instead, which keeps the serializers' answers exactly what validation used to send.
 *
 * Error answers are only held to their shape: they are mostly the error handler's, whose field
 * errors may name any key a client sent (`__proto__` included), which a zod record cannot carry.
 * A failure is also emitted as a process warning, so that the test that met it shows why.
 */
export const checkAnswersAgainstContract: RequestHandler = (req, res, next) => {
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    const route = (req as { tsRestRoute?: AppRoute }).tsRestRoute;
    if (route) assertOnContract(route, res.statusCode, body);
    return json(body);
  };
  next();
};

/** Throws (and warns of) an AnswerOffContract when `body` is not what the route's contract says of it. */
export function assertOnContract(route: AppRoute, status: number, body: unknown): void {
  const problem = problemWith(route, status, body);
  if (!problem) return;
  process.emitWarning(problem);
  throw problem;
}

function problemWith(route: AppRoute, status: number, body: unknown): AnswerOffContract | undefined {
  let validated: unknown;
  try {
    validated = validateResponse({ appRoute: route, response: { status, body } }).body;
  } catch (error) {
    return new AnswerOffContract(route, status, 'does not pass its schema', error);
  }
  const sent = JSON.stringify(body);
  const expected = JSON.stringify(validated);
  if (status < 400 && sent !== expected) {
    return new AnswerOffContract(route, status, `differs from its validated form:\n  sent      ${sent.slice(0, 500)}\n  validated ${expected.slice(0, 500)}`);
  }
  return undefined;
}

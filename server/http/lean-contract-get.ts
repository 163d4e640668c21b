import { isAppRouteNoBody, isAppRouteOtherResponse, TsRestResponseError, type AppRouteQuery } from '@ts-rest/core';
import type { AppRouteQueryImplementation } from '@ts-rest/express';
import { assertOnContract } from './answer-check';
import type { LeanExchange, LeanRoute } from './lean-route';
import { answeredByDeadline } from './request-deadline';

type Params = Record<string, string>;

/** A path parameter with nothing to percent-decode: RFC 3986's unreserved characters. */
const PLAIN_SEGMENT = /^[\w.~-]+$/;

/**
 * A GET of the contract served before express (see leanRoutes) by the very handler its express route
 * runs, ts-rest's implementation: for the small authenticated reads a client makes most (who am I,
 * my feature flags), of which express's per-request machinery was about a third of the CPU
 * (README → Performance).
 *
 * Only the plain request comes this way: the path exactly as the contract spells it, its parameters
 * of unreserved characters only (nothing to percent-decode) and accepted by the route's schema, no
 * query string, no If-None-Match. Anything else goes on to express, which answers as it
 * always has. The handler is given node's request and response: it may read only the session
 * (`currentUser(req)`) and its params, which test/lean-routes.test.ts holds to for every route
 * served this way by comparing its answers with express's to the byte.
 */
export function leanContractGet<Route extends AppRouteQuery>(
  route: Route,
  handler: AppRouteQueryImplementation<Route>,
  checkAnswers: boolean,
): LeanRoute<Params> {
  // (The contract gives every route `headers: {}`, none of which it reads.)
  if (route.query || Object.keys(route.headers ?? {}).length > 0) throw new Error(`${route.path} cannot be a lean GET: it reads a query or headers`);
  const notJson = (response: unknown) => isAppRouteNoBody(response as never) || isAppRouteOtherResponse(response as never);
  if (Object.values(route.responses).some(notJson)) throw new Error(`${route.path} cannot be a lean GET: an answer of it is not JSON`);
  const paramsOf = pathMatcher(route);
  const answer = handler as unknown as (input: object) => Promise<{ status: number; body: unknown }>;
  return {
    route,
    admits: () => true,
    plain: (req) => paramsOf(req.url ?? ''),
    serve: (exchange) => answeredBy(answer, exchange).then(({ status, body }) => write(route, exchange, status, body, checkAnswers)),
  };
}

/** What the handler answers, as ts-rest takes it: a TsRestResponseError it throws is an answer too. */
function answeredBy(
  handler: (input: object) => Promise<{ status: number; body: unknown }>,
  { req, res, plain: params }: LeanExchange<Params>,
): Promise<{ status: number; body: unknown }> {
  return handler({ params, query: {}, headers: req.headers, body: undefined, req, res }).catch((error: unknown) => {
    if (error instanceof TsRestResponseError) return { status: error.statusCode, body: error.body };
    throw error;
  });
}

/** Writes the JSON answer as ts-rest's express adapter does, unless the deadline has answered already. */
function write(route: AppRouteQuery, { res, writeJson, log }: LeanExchange<Params>, status: number, body: unknown, checkAnswers: boolean): void {
  if (answeredByDeadline(res)) return void log().warn('late end of a request answered by its deadline');
  // As the test apps check every express route's answers.
  if (checkAnswers) assertOnContract(route, status, body);
  writeJson(status, body);
}

/**
 * The route's path parameters in a request's URL that names it exactly (as the contract spells the
 * path, no query string), each of unreserved characters and accepted by the route's schema;
 * undefined for any other URL.
 */
function pathMatcher(route: AppRouteQuery): (url: string) => Params | undefined {
  const segments = route.path.split('/');
  const names = segments.map((segment) => (segment.startsWith(':') ? segment.slice(1) : undefined));
  if (!names.some(Boolean)) return (url) => (url === route.path ? {} : undefined);
  // Most URLs differ before the first parameter: they are not split.
  const prefix = route.path.slice(0, route.path.indexOf('/:') + 1);
  return (url) => {
    if (!url.startsWith(prefix)) return undefined;
    const given = url.split('/');
    if (given.length !== segments.length) return undefined;
    const params: Params = {};
    for (let i = 0; i < segments.length; i++) {
      const name = names[i];
      if (name === undefined ? given[i] !== segments[i] : !PLAIN_SEGMENT.test(given[i])) return undefined;
      if (name !== undefined) params[name] = given[i];
    }
    if (!route.pathParams) return params;
    const parsed = (route.pathParams as { safeParse(value: unknown): { success: boolean; data?: Params } }).safeParse(params);
    return parsed.success ? parsed.data : undefined;
  };
}

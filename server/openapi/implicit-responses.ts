import { initContract, isAppRoute, isAppRouteOtherResponse, type AppRoute, type AppRouter } from '@ts-rest/core';
import { BadRequest, contract, Detail, routeAccess } from '../../contract';
import { takesBody } from '../http/json-body';
import { countsAsWrite } from '../http/write-limit';

/**
 * The statuses a route can answer because of how the server serves every route, whatever its
 * handler does, so that a client generated from openapi.json never meets a status the document
 * does not list:
 * - a body is read (POST, PUT, PATCH): 400 malformed or undecodable, 413 too large, 415 not JSON;
 * - a query is parsed: 400; a path names an object: 404 (also for a malformed or foreign id);
 * - a token is needed: 401; administrators only: 403; a user's write: 429 (the write limit);
 * - a GET answered with JSON: 304 to a client whose `If-None-Match` names the answer's ETag (express
 *   sets one on every body it sends whole; streams and CSV have none);
 * - anything: 500 (`{"detail": "Internal server error"}`); anything that needs the database (all but
 *   the liveness check): 503 while the database is unavailable, and past the request deadline (all
 *   but a long-poll or a stream, which have none).
 * A 405 is never the answer to a documented operation: it answers a method the path does not have.
 */
export function implicitResponses(route: AppRoute): AppRoute['responses'] {
  const access = routeAccess(route);
  const readsBody = takesBody(route.method);
  const responses: AppRoute['responses'] = { 500: Detail };
  if (route.method === 'GET' && !isAppRouteOtherResponse(route.responses[200])) responses[304] = initContract().noBody();
  if (readsBody || route.query) responses[400] = BadRequest;
  if (!access.public) responses[401] = Detail;
  if (access.adminOnly) responses[403] = Detail;
  if (route.path.includes('/:')) responses[404] = Detail;
  if (readsBody) responses[413] = responses[415] = Detail;
  if (!access.public && countsAsWrite(route.method)) responses[429] = Detail;
  if (route.path !== contract.health.live.path) responses[503] = Detail;
  return responses;
}

/** The router with each route's implicit responses added to those it declares (declared ones win). */
export function withImplicitResponses<T extends AppRouter>(router: T): T {
  return Object.fromEntries(
    Object.entries(router).map(([name, entry]) => [
      name,
      isAppRoute(entry) ? { ...entry, responses: { ...implicitResponses(entry), ...entry.responses } } : withImplicitResponses(entry),
    ]),
  ) as T;
}

import { isAppRouteOtherResponse, type AppRoute } from '@ts-rest/core';
import { generateOpenApi } from '@ts-rest/open-api';
import { contract, routeAccess } from '../../contract';
import { withImplicitResponses } from './implicit-responses';

const SECURITY_SCHEMES = {
  TokenAuth: {
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
    description: 'The `auth_token` from `POST /auth/token/login/`, sent as `Authorization: Token <auth_token>`.',
  },
  BearerAuth: {
    type: 'http',
    scheme: 'bearer',
    description: 'The same token, sent as `Authorization: Bearer <auth_token>`.',
  },
} as const;

/** Either scheme authenticates: each requirement object is one alternative. */
const PROTECTED: Array<Record<string, string[]>> = [{ TokenAuth: [] }, { BearerAuth: [] }];

const RESPONSE_DESCRIPTIONS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted (see the body)',
  204: 'No content',
  304: 'Not modified: the answer is the one the `If-None-Match` ETag names',
  400: 'Invalid input: `{"field": ["message"]}`, or `{"detail": "…"}` for the request as a whole',
  401: 'Missing or invalid token',
  403: 'Not allowed for this user',
  404: 'Not found (also for objects of other users, and for malformed ids)',
  409: 'Conflicts with an earlier or concurrent request (see the body)',
  413: 'The request body is over the 100 KB limit (after decoding its Content-Encoding)',
  415: 'The body is not `application/json` in UTF-8, or its Content-Encoding is not identity, gzip or deflate',
  429: 'Too many requests: retry after the `Retry-After` header’s seconds',
  500: 'Internal server error: `{"detail": "Internal server error"}`',
  503: 'This instance cannot serve now (see the body)',
};

/** The generator describes each response by its bare status code; say what it means instead. */
function describeResponses(responses: Record<string, { description?: string }>) {
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => [
      status,
      { ...response, description: RESPONSE_DESCRIPTIONS[status] ?? response.description },
    ]),
  );
}

/**
 * The generator drops what `c.otherResponse` declares (the SSE stream's `text/event-stream`): put
 * the content type back, with the body as a string.
 */
function restoreOtherContent(responses: Record<string, object>, route: AppRoute) {
  const restored = { ...responses };
  for (const [status, declared] of Object.entries(route.responses)) {
    if (!isAppRouteOtherResponse(declared) || !restored[status]) continue;
    restored[status] = { ...restored[status], content: { [declared.contentType]: { schema: { type: 'string' } } } };
  }
  return restored;
}

/**
 * openapi.json, derived from the contract and the statuses every route can answer (implicit
 * responses). The generator writes no security requirements, so each operation gets them here:
 * either scheme on protected routes, none on the public ones.
 */
export function buildOpenApiDocument() {
  return generateOpenApi(
    withImplicitResponses(contract),
    {
      info: {
        title: 'Punchclock API',
        version: '1.0.0',
        description:
          'Time tracking with real-time notifications and feature flags. Errors: validation → 400 ' +
          '`{"field": ["message"]}`; everything else → `{"detail": "…"}`.',
      },
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    {
      setOperationId: 'concatenated-path',
      operationMapper: (operation, route) => ({
        ...operation,
        responses: restoreOtherContent(describeResponses(operation.responses), route),
        security: routeAccess(route).public ? [] : PROTECTED,
      }),
    },
  );
}

/** The document as committed in openapi.json: stable key order, two-space indent, final newline. */
export const renderOpenApiDocument = () => `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;

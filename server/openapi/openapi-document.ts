import type { AppRoute } from '@ts-rest/core';
import { generateOpenApi } from '@ts-rest/open-api';
import { contract } from '../../contract';

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

const isPublic = (route: AppRoute) => (route.metadata as { public?: boolean } | undefined)?.public === true;

/**
 * openapi.json, derived from the contract. The generator writes no security requirements, so each
 * operation gets them here: either scheme on protected routes, none on the public ones.
 */
export function buildOpenApiDocument() {
  return generateOpenApi(
    contract,
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
        security: isPublic(route) ? [] : PROTECTED,
      }),
    },
  );
}

/** The document as committed in openapi.json: stable key order, two-space indent, final newline. */
export const renderOpenApiDocument = () => `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;

import { extendApi } from '@anatine/zod-openapi';
import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, documented, errors, IntId, PAGED_ARRAY, PageQuery, PersonName, Timestamp, type RouteAccess } from './common';

const c = initContract();

export const Username = extendApi(
  z
    .string()
    .min(1)
    .max(150)
    .regex(/^[\p{L}\p{N}_.@+-]+$/u, 'Enter a valid username: letters, digits and @/./+/-/_ only.'),
  {
    example: 'john_doe',
    description:
      'Letters of any script, digits and @ . + - _ only. Unique regardless of case and width (NFKC + case folding: ' +
      '`Alice` and `ａｌｉｃｅ` are `alice`, and log in as it), and refused when it looks like an existing name ' +
      '(Unicode TR 39 confusable skeleton: Cyrillic `аlice`). The server checks it; the document gives no `pattern`, ' +
      'since the rule needs `\\p{L}`, which JSON-Schema validators outside JavaScript reject or misread.',
    // Left out of openapi.json on purpose (see the description); zod still applies the regex.
    pattern: undefined,
  },
);

export const User = z.object({
  id: z.number().int(),
  username: z.string(),
  first_name: z.string(),
  last_name: z.string(),
});

export const Me = User.extend({
  profile_image: z.string().nullable(),
  is_admin: z.boolean(),
});

export const RegisterBody = z
  .object({
    username: Username,
    password: extendApi(z.string().max(128), {
      description: 'At least 8 characters, not only digits, not the username.',
      example: 'correct horse battery staple',
    }),
    first_name: PersonName.optional(),
    last_name: PersonName.optional(),
  })
  .strict();

export const LoginBody = z
  .object({
    username: extendApi(z.string().max(150), { description: 'The username in any spelling that folds to it (case, width).' }),
    password: z.string().max(128),
  })
  .strict();

export const Session = z.object({
  id: z.number().int(),
  created_at: documented(Timestamp, { description: 'When the login that opened it happened.' }),
  last_used_at: documented(Timestamp, { description: 'The last request made with it, to within a minute.' }),
  user_agent: documented(z.string().nullable(), { description: 'The User-Agent of the login (its first 512 characters); null when it sent none.' }),
  expires_at: documented(Timestamp.nullable(), {
    description: 'When it expires unless used before (each use pushes it back: TOKEN_TTL_DAYS after the last use); null when tokens never expire.',
  }),
  current: documented(z.boolean(), { description: 'Whether this request was made with it.' }),
});

const Names = z.object({ first_name: PersonName, last_name: PersonName }).strict();

export const authContract = c.router({
  register: {
    method: 'POST',
    path: '/auth/users/',
    summary: 'Register a new user',
    metadata: { public: true } as const satisfies RouteAccess,
    body: RegisterBody,
    responses: { 201: User, ...errors.badRequest, ...errors.tooManyRequests },
  },
  login: {
    method: 'POST',
    path: '/auth/token/login/',
    summary: 'Exchange credentials for a token',
    description:
      'The token is returned once; send it as `Authorization: Token <t>` (or `Bearer <t>`). ' +
      'Repeated failed attempts for one username or address are refused with 429 and `Retry-After`.',
    metadata: { public: true } as const satisfies RouteAccess,
    body: LoginBody,
    responses: {
      200: z.object({ auth_token: z.string() }),
      ...errors.badRequest,
      ...errors.tooManyRequests,
    },
  },
  logout: {
    method: 'POST',
    path: '/auth/token/logout/',
    summary: 'Revoke the token of this request',
    body: c.noBody(),
    responses: { 204: c.noBody(), ...authenticatedErrors },
  },
  logoutAll: {
    method: 'POST',
    path: '/auth/token/logout_all/',
    summary: 'Revoke every token of the user, this one included (sign out everywhere)',
    body: c.noBody(),
    responses: { 204: c.noBody(), ...authenticatedErrors },
  },
  listSessions: {
    method: 'GET',
    path: '/auth/tokens/',
    summary: "The user's sessions (one per token), oldest first; the token itself is never shown again",
    description: PAGED_ARRAY,
    query: z.object(PageQuery(100, 100)).strict(),
    responses: { 200: z.array(Session), ...errors.badRequest, ...authenticatedErrors },
  },
  revokeSession: {
    method: 'DELETE',
    path: '/auth/tokens/:id/',
    summary: 'Revoke one of the user’s sessions: its token is refused from the next request on, on every instance',
    pathParams: z.object({ id: documented(IntId, { description: 'A session of the user (`GET /auth/tokens/`).' }) }),
    body: c.noBody(),
    responses: { 204: c.noBody(), ...errors.notFound, ...authenticatedErrors },
  },
  me: {
    method: 'GET',
    path: '/auth/users/me/',
    summary: 'The authenticated user',
    responses: { 200: Me, ...authenticatedErrors },
  },
  replaceMe: {
    method: 'PUT',
    path: '/auth/users/me/',
    summary: 'Replace the names of the authenticated user',
    body: Names,
    responses: { 200: Me, ...errors.badRequest, ...authenticatedErrors },
  },
  updateMe: {
    method: 'PATCH',
    path: '/auth/users/me/',
    summary: 'Update some names of the authenticated user',
    body: Names.partial(),
    responses: { 200: Me, ...errors.badRequest, ...authenticatedErrors },
  },
});

import { extendApi } from '@anatine/zod-openapi';
import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, BoundedArray, Description, Detail, documented, errors, IdField, IntId, PageQuery, type RouteAccess, Timestamp } from './common';

const c = initContract();

const ADMIN = { adminOnly: true } as const satisfies RouteAccess;

export const FLAG_KEY = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const FlagKey = extendApi(z.string().regex(FLAG_KEY, 'Enter a key of lowercase letters, digits, _ . - (at most 64, not starting with _ . -).'), {
  example: 'new_ui_design',
});

export const FeatureFlag = z.object({
  id: z.number().int(),
  key: FlagKey,
  name: z.string(),
  description: z.string(),
  is_enabled: extendApi(z.boolean(), { description: 'The global switch.' }),
  rollout_percentage: z.number().int().min(0).max(100),
  user_count: extendApi(z.number().int(), { description: 'How many users have explicit access.' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const MyFeatures = z.object({
  enabled_features: z.array(FeatureFlag),
  disabled_features: z.array(FeatureFlag),
  total_features: z.number().int(),
});

const FlagCheck = z.object({
  feature_key: z.string(),
  feature_name: z.string().nullable(),
  is_enabled: extendApi(z.boolean(), { description: 'Global switch, explicit access and rollout together: whether the user gets the feature.' }),
  feature_enabled_globally: z.boolean(),
  user_has_access: z.boolean(),
});

const FlagNotFound = extendApi(FlagCheck.extend({ error: z.string() }), {
  example: {
    feature_key: 'unknown_feature',
    feature_name: null,
    is_enabled: false,
    feature_enabled_globally: false,
    user_has_access: false,
    error: 'Feature flag not found',
  },
});

/** The user routes take any key up to 200 characters: an unknown one is answered with SPEC's 404 body. */
/** The 404 of a path that names no key at all (a broken percent-escape, a key over 200 characters). */
const MalformedPath = Detail;

const UserFlagParams = z.object({ feature_key: z.string().min(1).max(200) });
const FlagParams = z.object({ key: FlagKey });

const FlagName = z.string().trim().min(1).max(200);
const Rollout = extendApi(z.number().int().min(0).max(100), { description: 'Percent of the users with access who get the feature.' });

const CreateFlag = z
  .object({
    key: documented(FlagKey.optional(), { description: 'Made from the name when left out.' }),
    name: FlagName,
    description: Description.default(''),
    is_enabled: z.boolean().default(false),
    rollout_percentage: Rollout.default(100),
  })
  .strict();

const UpdateFlag = z
  .object({ name: FlagName, description: Description, is_enabled: z.boolean(), rollout_percentage: Rollout })
  .partial()
  .strict();

const FlagUser = z.object({
  id: z.number().int(),
  username: z.string(),
  first_name: z.string(),
  last_name: z.string(),
  granted_at: Timestamp,
});

const AuditEntry = z.object({
  id: z.number().int(),
  flag_key: z.string(),
  actor: extendApi(z.string().nullable(), { description: 'The username of who made the change; null once that user is deleted.' }),
  action: z.enum(['create', 'update', 'delete', 'grant', 'revoke']),
  before: extendApi(z.record(z.unknown()).nullable(), { description: 'The flag (or access) before the change.' }),
  after: extendApi(z.record(z.unknown()).nullable(), { description: 'The flag (or access) after the change.' }),
  created_at: Timestamp,
});

const Page = PageQuery(50, 100);

export const featureFlagsContract = c.router(
  {
    myFeatures: {
      method: 'GET',
      path: '/api/feature-flags/user-features/my_features/',
      summary: 'The feature flags of the current user',
      description:
        'Regular users: the globally enabled flags they have explicit access to, split by whether the rollout includes them. ' +
        'Administrators: every flag, split by the global switch.',
      responses: { 200: MyFeatures },
    },
    check: {
      method: 'GET',
      path: '/api/feature-flags/user-features/:feature_key/check/',
      summary: 'Whether a flag is on for the current user',
      pathParams: UserFlagParams,
      responses: { 200: FlagCheck, 404: z.union([FlagNotFound, MalformedPath]) },
    },
    logAccess: {
      method: 'POST',
      path: '/api/feature-flags/user-features/:feature_key/log-access/',
      summary: 'Record that the user used a feature (usage analytics)',
      pathParams: UserFlagParams,
      body: c.noBody(),
      responses: {
        200: z.object({ message: z.string(), feature_key: z.string(), feature_name: z.string() }),
        404: z.union([extendApi(z.object({ error: z.string() }), { example: { error: 'Feature flag not found' } }), MalformedPath]),
      },
    },
    list: {
      method: 'GET',
      path: '/api/feature-flags/flags/',
      summary: 'Every flag, oldest first (administrators)',
      metadata: ADMIN,
      query: z.object(Page).strict(),
      responses: { 200: z.array(FeatureFlag), ...errors.forbidden },
    },
    create: {
      method: 'POST',
      path: '/api/feature-flags/flags/',
      summary: 'Create a flag (administrators)',
      metadata: ADMIN,
      body: CreateFlag,
      responses: { 201: FeatureFlag, ...errors.badRequest, ...errors.forbidden },
    },
    get: {
      method: 'GET',
      path: '/api/feature-flags/flags/:key/',
      summary: 'One flag (administrators)',
      metadata: ADMIN,
      pathParams: FlagParams,
      responses: { 200: FeatureFlag, ...errors.forbidden, ...errors.notFound },
    },
    update: {
      method: 'PATCH',
      path: '/api/feature-flags/flags/:key/',
      summary: 'Change a flag: name, description, global switch, rollout (administrators)',
      metadata: ADMIN,
      pathParams: FlagParams,
      body: UpdateFlag,
      responses: { 200: FeatureFlag, ...errors.badRequest, ...errors.forbidden, ...errors.notFound },
    },
    remove: {
      method: 'DELETE',
      path: '/api/feature-flags/flags/:key/',
      summary: 'Delete a flag (administrators)',
      metadata: ADMIN,
      pathParams: FlagParams,
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.forbidden, ...errors.notFound },
    },
    listUsers: {
      method: 'GET',
      path: '/api/feature-flags/flags/:key/users/',
      summary: 'The users with explicit access, by user id (administrators)',
      metadata: ADMIN,
      pathParams: FlagParams,
      query: z.object(Page).strict(),
      responses: { 200: z.array(FlagUser), ...errors.forbidden, ...errors.notFound },
    },
    grant: {
      method: 'POST',
      path: '/api/feature-flags/flags/:key/users/',
      summary: 'Grant users explicit access (administrators)',
      metadata: ADMIN,
      pathParams: FlagParams,
      body: z.object({ user_ids: BoundedArray(IdField, { min: 1, max: 1000 }) }).strict(),
      responses: {
        200: z.object({ granted: extendApi(z.array(z.number().int()), { description: 'Ids that did not have access before.' }), user_count: z.number().int() }),
        ...errors.badRequest,
        ...errors.forbidden,
        ...errors.notFound,
      },
    },
    revoke: {
      method: 'DELETE',
      path: '/api/feature-flags/flags/:key/users/:user_id/',
      summary: 'Take a user’s explicit access away (administrators)',
      metadata: ADMIN,
      pathParams: z.object({ key: FlagKey, user_id: IntId }),
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.forbidden, ...errors.notFound },
    },
    stats: {
      method: 'GET',
      path: '/api/feature-flags/flags/:key/stats/',
      summary: 'Accesses logged per UTC day, and distinct users (administrators)',
      description: 'The last `days` days, today included; days without an access are listed with zeros.',
      metadata: ADMIN,
      pathParams: FlagParams,
      query: z.object({ days: extendApi(z.string().regex(/^\d{1,3}$/, 'A valid integer is required.').transform(Number).pipe(z.number().int().min(1).max(365)).default('30'), { type: 'integer', minimum: 1, maximum: 365, default: 30 }) }).strict(),
      responses: {
        200: z.object({
          feature_key: z.string(),
          days: z.number().int(),
          total_accesses: z.number().int(),
          distinct_users: z.number().int(),
          per_day: z.array(z.object({ day: extendApi(z.string(), { example: '2025-11-29' }), accesses: z.number().int(), distinct_users: z.number().int() })),
        }),
        ...errors.badRequest,
        ...errors.forbidden,
        ...errors.notFound,
      },
    },
    audit: {
      method: 'GET',
      path: '/api/feature-flags/audit/',
      summary: 'Every change to flags and their access, newest first (administrators)',
      metadata: ADMIN,
      query: z.object({ ...Page, flag: documented(FlagKey, { description: 'Only this flag’s changes.' }).optional() }).strict(),
      responses: { 200: z.array(AuditEntry), ...errors.badRequest, ...errors.forbidden },
    },
  },
  { commonResponses: authenticatedErrors },
);

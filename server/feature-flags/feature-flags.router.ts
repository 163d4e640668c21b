import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { pagedAnswer } from '../pagination/link-header';
import type { FeatureFlagsService } from './feature-flags.service';
import {
  serializeAuditEntry,
  serializeCheck,
  serializeFlag,
  serializeFlagUser,
  serializeStats,
  serializeUnknownFlag,
} from './feature-flag.serializer';

const s = initServer();

export const featureFlagsRouter = (flags: FeatureFlagsService) =>
  s.router(contract.featureFlags, {
    myFeatures: async ({ req }) => {
      const { enabled, disabled } = await flags.myFeatures(currentUser(req));
      return {
        status: 200,
        body: {
          enabled_features: enabled.map(serializeFlag),
          disabled_features: disabled.map(serializeFlag),
          total_features: enabled.length + disabled.length,
        },
      };
    },
    check: async ({ params, req }) => {
      const check = await flags.check(currentUser(req), params.feature_key);
      return check ? { status: 200, body: serializeCheck(check) } : { status: 404, body: serializeUnknownFlag(params.feature_key) };
    },
    logAccess: async ({ params, req }) => {
      const flag = await flags.logAccess(currentUser(req), params.feature_key, { ip: req.ip, userAgent: req.get('user-agent') });
      if (!flag) return { status: 404, body: { error: 'Feature flag not found' } };
      return { status: 200, body: { message: 'Feature access logged successfully', feature_key: flag.key, feature_name: flag.name } };
    },
    list: async ({ query, req, res }) => pagedAnswer(await flags.list(query), serializeFlag, req, res),
    create: async ({ body, req }) => ({ status: 201, body: serializeFlag(await flags.create(currentUser(req), body)) }),
    get: async ({ params }) => ({ status: 200, body: serializeFlag(await flags.get(params.key)) }),
    update: async ({ params, body, req }) => ({ status: 200, body: serializeFlag(await flags.update(currentUser(req), params.key, body)) }),
    remove: async ({ params, req }) => {
      await flags.remove(currentUser(req), params.key);
      return { status: 204, body: undefined };
    },
    listUsers: async ({ params, query, req, res }) => pagedAnswer(await flags.listUsers(params.key, query), serializeFlagUser, req, res),
    grant: async ({ params, body, req }) => {
      const { granted, userCount } = await flags.grant(currentUser(req), params.key, body.user_ids);
      return { status: 200, body: { granted, user_count: userCount } };
    },
    revoke: async ({ params, req }) => {
      await flags.revoke(currentUser(req), params.key, params.user_id);
      return { status: 204, body: undefined };
    },
    stats: async ({ params, query }) => ({ status: 200, body: serializeStats(await flags.stats(params.key, query.days)) }),
    audit: async ({ query, req, res }) => pagedAnswer(await flags.audit(query), serializeAuditEntry, req, res),
  });

import type { UserRow } from '../auth/auth.service';
import type { AuditAction, AuditRow, FeatureFlagsService, Flag, FlagCheck } from './feature-flags.service';

/**
 * Flags come from the evaluation cache as the same (never changed) objects request after request:
 * each is serialized once while it is cached, and forgotten with it.
 */
const serializedFlags = new WeakMap<Flag, ReturnType<typeof toWire>>();

export function serializeFlag(flag: Flag) {
  let wire = serializedFlags.get(flag);
  if (!wire) serializedFlags.set(flag, (wire = toWire(flag)));
  return wire;
}

const toWire = (flag: Flag) => ({
  id: flag.id,
  key: flag.key,
  name: flag.name,
  description: flag.description,
  is_enabled: flag.isEnabled,
  rollout_percentage: flag.rolloutPercentage,
  user_count: flag.userCount,
  created_at: flag.createdAt.toISOString(),
  updated_at: flag.updatedAt.toISOString(),
});

export const serializeCheck = ({ flag, userHasAccess, isEnabled }: FlagCheck) => ({
  feature_key: flag.key,
  feature_name: flag.name,
  is_enabled: isEnabled,
  feature_enabled_globally: flag.isEnabled,
  user_has_access: userHasAccess,
});

/** SPEC's 404 body of the check: the key asked for, and nothing known about it. */
export const serializeUnknownFlag = (key: string) => ({
  feature_key: key,
  feature_name: null,
  is_enabled: false,
  feature_enabled_globally: false,
  user_has_access: false,
  error: 'Feature flag not found',
});

export const serializeFlagUser = ({ user, grantedAt }: { user: UserRow; grantedAt: Date }) => ({
  id: user.id,
  username: user.username,
  first_name: user.firstName,
  last_name: user.lastName,
  granted_at: grantedAt.toISOString(),
});

export const serializeAuditEntry = (entry: AuditRow) => ({
  id: entry.id,
  flag_key: entry.flagKey,
  actor: entry.actor,
  // The action column only ever holds an AuditAction: the service writes nothing else.
  action: entry.action as AuditAction,
  before: entry.before === null ? null : (JSON.parse(entry.before) as Record<string, unknown>),
  after: entry.after === null ? null : (JSON.parse(entry.after) as Record<string, unknown>),
  created_at: entry.createdAt.toISOString(),
});

export const serializeStats = (stats: Awaited<ReturnType<FeatureFlagsService['stats']>>) => ({
  feature_key: stats.flag.key,
  days: stats.days,
  total_accesses: stats.totalAccesses,
  distinct_users: stats.distinctUsers,
  per_day: stats.perDay.map((day) => ({ day: day.day, accesses: day.accesses, distinct_users: day.distinctUsers })),
});

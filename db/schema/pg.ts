// Postgres tables. db/schema/sqlite.ts declares the same tables and columns for SQLite;
// test/db/schema-parity.test.ts keeps the two in step.
import { sql } from 'drizzle-orm';
import { bigint, boolean, customType, date, index, integer, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { OPEN_DURATION_S as OPEN_DURATION, OPEN_END_MS as OPEN_END } from './sort-keys';

/**
 * An instant, to the millisecond. drizzle's own timestamp column reads Postgres's text
 * (`0012-03-04 05:06:07+00`) with `new Date()`, whose fallback parser takes a year below 100 for a
 * two-digit one (2004-12-03) and refuses an offset with seconds (`+00:19:32`, what a server whose
 * TimeZone is not UTC writes for a time before its zone's standard time): read exactly here.
 */
const instant = customType<{ data: Date; driverData: string }>({
  dataType: () => 'timestamp (3) with time zone',
  toDriver: (value) => value.toISOString(),
  fromDriver: instantFromPostgres,
});

const POSTGRES_INSTANT = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/** A timestamptz as Postgres writes it (DateStyle ISO), whatever its offset and year. */
function instantFromPostgres(text: string): Date {
  // The common case, a year of four digits from 1000 in UTC, Date reads right and 2.5 times faster
  // (a broadcast's read turns 10,000 of them into Dates).
  if (text.endsWith('+00') && text.charCodeAt(0) !== 48) return new Date(text);
  const parts = POSTGRES_INSTANT.exec(text);
  if (!parts) return new Date(text);
  const [, year, month, day, hours, minutes, seconds, fraction = '', sign, offsetHours, offsetMinutes = '0', offsetSeconds = '0', bc] = parts;
  const local = new Date(0);
  local.setUTCFullYear(bc ? 1 - Number(year) : Number(year), Number(month) - 1, Number(day));
  local.setUTCHours(Number(hours), Number(minutes), Number(seconds), Math.round(Number(`0${fraction}`) * 1000));
  const offsetMs = (Number(offsetHours) * 3600 + Number(offsetMinutes) * 60 + Number(offsetSeconds)) * 1000;
  return new Date(local.getTime() - (sign === '-' ? -offsetMs : offsetMs));
}

const createdAt = () => instant('created_at').notNull();

export const users = pgTable('users', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  username: text('username').notNull().unique(),
  // Derived from username (server/auth/username-identity.ts); null only for a name that clashed with
  // an older one when the keys were introduced (reported at start, never merged).
  usernameKey: text('username_key').unique(),
  usernameSkeleton: text('username_skeleton').unique(),
  passwordHash: text('password_hash').notNull(),
  firstName: text('first_name').notNull(),
  lastName: text('last_name').notNull(),
  profileImage: text('profile_image'),
  isAdmin: boolean('is_admin').notNull(),
  createdAt: createdAt(),
});

export const authTokens = pgTable(
  'auth_tokens',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    digest: text('digest').notNull().unique(),
    createdAt: createdAt(),
    /** Written at most once a minute per token (server/auth/sessions.service.ts); null only in rows from before it existed, until the migration filled them. */
    lastUsedAt: instant('last_used_at'),
    /** The login's User-Agent, cut to 512 characters; null when it sent none. */
    userAgent: text('user_agent'),
  },
  (t) => [index('auth_tokens_user_id_idx').on(t.userId)],
);

export const projects = pgTable(
  'projects',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    title: text('title').notNull(),
    description: text('description').notNull(),
    ownerId: integer('owner_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [index('projects_owner_id_idx').on(t.ownerId)],
);

export const projectMembers = pgTable(
  'project_members',
  {
    projectId: integer('project_id').notNull().references(() => projects.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.userId] }), index('project_members_user_id_idx').on(t.userId)],
);

/**
 * Pending invitations to join a project. Kept by the name the owner typed, whether or not a user has
 * it (invitee_id is null then), so that neither the answer nor the owner's list tells which names
 * exist; one per name (its folded key) per project. Accepting or declining deletes the row.
 */
export const projectInvitations = pgTable(
  'project_invitations',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    projectId: integer('project_id').notNull().references(() => projects.id, { onDelete: 'cascade' }),
    username: text('username').notNull(),
    usernameKey: text('username_key').notNull(),
    inviteeId: integer('invitee_id').references(() => users.id, { onDelete: 'cascade' }),
    invitedBy: integer('invited_by').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('project_invitations_project_name_key').on(t.projectId, t.usernameKey),
    index('project_invitations_invitee_idx').on(t.inviteeId),
  ],
);

export const tags = pgTable(
  'tags',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('tags_user_id_title_key').on(t.userId, t.title)],
);


export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey(),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    message: text('message').notNull(),
    createdAt: createdAt(),
    deliveredAt: instant('delivered_at'),
    readAt: instant('read_at'),
  },
  (t) => [
    index('notifications_user_created_idx').on(t.userId, t.createdAt, t.id),
    index('notifications_undelivered_idx').on(t.userId, t.createdAt, t.id).where(sql`delivered_at is null`),
  ],
);

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    requestDigest: text('request_digest').notNull(),
    response: text('response'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] }), index('idempotency_keys_created_idx').on(t.createdAt)],
);

const OPEN_END_MS = sql.raw(String(OPEN_END));
const OPEN_DURATION_S = sql.raw(String(OPEN_DURATION));

export const timeEntries = pgTable(
  'time_entries',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    // A deleted project leaves its entries, without a project: tracked time is not thrown away.
    projectId: integer('project_id').references(() => projects.id, { onDelete: 'set null' }),
    title: text('title').notNull(),
    description: text('description').notNull(),
    startTime: instant('start_time').notNull(),
    endTime: instant('end_time'),
    idleSeconds: integer('idle_seconds').notNull(),
    /** When the 8-hour warning was sent for this entry (claimed by one conditional UPDATE). */
    warnedAt: instant('warned_at'),
    createdAt: createdAt(),
    // Derived by the database, so that they can never disagree with start and end. The *_key
    // columns give each ordering a non-null sort key (a running entry sorts last when ascending),
    // which keyset pages compare as row values and an index serves.
    isActive: boolean('is_active').generatedAlwaysAs(sql`end_time is null`),
    durationSeconds: integer('duration_seconds').generatedAlwaysAs(
      sql`floor(extract(epoch from (end_time - start_time)))::integer`,
    ),
    endKey: bigint('end_key', { mode: 'number' }).generatedAlwaysAs(
      // (extract of a timestamptz is only stable; of an interval, immutable, as a generated column needs)
      sql`coalesce((extract(epoch from (end_time - to_timestamp(0))) * 1000)::bigint, ${OPEN_END_MS})`,
    ),
    /** The UTC day the entry started on, YYYY-MM-DD (the summary's days). */
    startDay: date('start_day', { mode: 'string' }).generatedAlwaysAs(sql`(start_time at time zone 'UTC')::date`),
    durationKey: integer('duration_key').generatedAlwaysAs(
      sql`coalesce(floor(extract(epoch from (end_time - start_time)))::integer, ${OPEN_DURATION_S})`,
    ),
  },
  (t) => [
    // At most one running entry per user: the database enforces it, whatever the code does.
    uniqueIndex('time_entries_one_active_key').on(t.userId).where(sql`end_time is null`),
    index('time_entries_user_start_idx').on(t.userId, t.startTime, t.id),
    index('time_entries_user_end_idx').on(t.userId, t.endKey, t.id),
    index('time_entries_user_duration_idx').on(t.userId, t.durationKey, t.id),
    index('time_entries_user_title_idx').on(t.userId, t.title, t.id),
    index('time_entries_user_active_idx').on(t.userId, t.isActive, t.id),
    index('time_entries_user_project_start_idx').on(t.userId, t.projectId, t.startTime, t.id),
    index('time_entries_project_idx').on(t.projectId),
    index('time_entries_running_idx').on(t.startTime).where(sql`end_time is null and warned_at is null`),
  ],
);

export const timeEntryTags = pgTable(
  'time_entry_tags',
  {
    timeEntryId: integer('time_entry_id').notNull().references(() => timeEntries.id, { onDelete: 'cascade' }),
    tagId: integer('tag_id').notNull().references(() => tags.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.timeEntryId, t.tagId] }), index('time_entry_tags_tag_idx').on(t.tagId, t.timeEntryId)],
);

export const idleSessions = pgTable(
  'idle_sessions',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    timeEntryId: integer('time_entry_id').notNull().references(() => timeEntries.id, { onDelete: 'cascade' }),
    startTime: instant('start_time').notNull(),
    endTime: instant('end_time').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('idle_sessions_entry_start_idx').on(t.timeEntryId, t.startTime)],
);

/**
 * How many time entries each user has, kept by triggers on time_entries (see the migration
 * 0003_time_entry_counts) in the same transaction as every insert and delete, so that the list's
 * unfiltered `count` is one row read instead of a count over all of a heavy user's entries.
 */
export const timeEntryCounts = pgTable('time_entry_counts', {
  userId: integer('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  entries: integer('entries').notNull(),
});

export const featureFlags = pgTable('feature_flags', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  key: text('key').notNull().unique(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  isEnabled: boolean('is_enabled').notNull(),
  rolloutPercentage: integer('rollout_percentage').notNull(),
  createdAt: createdAt(),
  updatedAt: instant('updated_at').notNull(),
});

/** Explicit access: the users a flag is granted to. */
export const featureFlagUsers = pgTable(
  'feature_flag_users',
  {
    flagId: integer('flag_id').notNull().references(() => featureFlags.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.flagId, t.userId] }), index('feature_flag_users_user_idx').on(t.userId)],
);

/** One row per log-access call: the usage analytics. */
export const featureAccessEvents = pgTable(
  'feature_access_events',
  {
    // 64-bit: a busy install logs billions of accesses, past a 32-bit id's 2,147,483,647 (SQLite's
    // integer ids are 64-bit already).
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    flagId: integer('flag_id').notNull().references(() => featureFlags.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    accessedAt: instant('accessed_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    /** The UTC day of the access, YYYY-MM-DD (the stats' days). */
    accessedDay: date('accessed_day', { mode: 'string' }).generatedAlwaysAs(sql`(accessed_at at time zone 'UTC')::date`),
  },
  (t) => [index('feature_access_events_flag_time_idx').on(t.flagId, t.accessedAt)],
);

/**
 * Every change to a flag or its access, with who made it and the state before and after (JSON).
 * Keyed by the flag's key, not its id, so the history of a deleted flag stays readable.
 */
export const featureFlagAudit = pgTable(
  'feature_flag_audit',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    flagKey: text('flag_key').notNull(),
    actorId: integer('actor_id').references(() => users.id, { onDelete: 'set null' }),
    action: text('action').notNull(),
    before: text('before'),
    after: text('after'),
    createdAt: createdAt(),
  },
  (t) => [index('feature_flag_audit_flag_idx').on(t.flagKey, t.id)],
);

// SQLite tables: the same tables, columns and indexes as db/schema/pg.ts.
import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { OPEN_DURATION_S as OPEN_DURATION, OPEN_END_MS as OPEN_END } from './sort-keys';

const instant = (name: string) => integer(name, { mode: 'timestamp_ms' });
const createdAt = () => instant('created_at').notNull();

export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  username: text('username').notNull().unique(),
  // Derived from username (server/auth/username-identity.ts); null only for a name that clashed with
  // an older one when the keys were introduced (reported at start, never merged).
  usernameKey: text('username_key').unique(),
  usernameSkeleton: text('username_skeleton').unique(),
  passwordHash: text('password_hash').notNull(),
  firstName: text('first_name').notNull(),
  lastName: text('last_name').notNull(),
  profileImage: text('profile_image'),
  isAdmin: integer('is_admin', { mode: 'boolean' }).notNull(),
  createdAt: createdAt(),
});

export const authTokens = sqliteTable(
  'auth_tokens',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
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

export const projects = sqliteTable(
  'projects',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    title: text('title').notNull(),
    description: text('description').notNull(),
    ownerId: integer('owner_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [index('projects_owner_id_idx').on(t.ownerId)],
);

export const projectMembers = sqliteTable(
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
export const projectInvitations = sqliteTable(
  'project_invitations',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
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

export const tags = sqliteTable(
  'tags',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('tags_user_id_title_key').on(t.userId, t.title)],
);

export const notifications = sqliteTable(
  'notifications',
  {
    id: text('id').primaryKey(),
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

export const idempotencyKeys = sqliteTable(
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

export const timeEntries = sqliteTable(
  'time_entries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    projectId: integer('project_id').references(() => projects.id, { onDelete: 'set null' }),
    title: text('title').notNull(),
    description: text('description').notNull(),
    startTime: instant('start_time').notNull(),
    endTime: instant('end_time'),
    idleSeconds: integer('idle_seconds').notNull(),
    warnedAt: instant('warned_at'),
    createdAt: createdAt(),
    // As in pg.ts; times are integer milliseconds here, so the expressions are simpler.
    isActive: integer('is_active', { mode: 'boolean' }).generatedAlwaysAs(sql`end_time is null`, { mode: 'virtual' }),
    durationSeconds: integer('duration_seconds').generatedAlwaysAs(sql`(end_time - start_time) / 1000`, { mode: 'virtual' }),
    endKey: integer('end_key').generatedAlwaysAs(sql`coalesce(end_time, ${OPEN_END_MS})`, { mode: 'virtual' }),
    // 1000.0: an integer division cuts a time before 1970 toward zero, into the next second (and day).
    startDay: text('start_day').generatedAlwaysAs(sql`strftime('%Y-%m-%d', start_time / 1000.0, 'unixepoch')`, { mode: 'virtual' }),
    durationKey: integer('duration_key').generatedAlwaysAs(sql`coalesce((end_time - start_time) / 1000, ${OPEN_DURATION_S})`, {
      mode: 'virtual',
    }),
  },
  (t) => [
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

export const timeEntryTags = sqliteTable(
  'time_entry_tags',
  {
    timeEntryId: integer('time_entry_id').notNull().references(() => timeEntries.id, { onDelete: 'cascade' }),
    tagId: integer('tag_id').notNull().references(() => tags.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.timeEntryId, t.tagId] }), index('time_entry_tags_tag_idx').on(t.tagId, t.timeEntryId)],
);

export const idleSessions = sqliteTable(
  'idle_sessions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    timeEntryId: integer('time_entry_id').notNull().references(() => timeEntries.id, { onDelete: 'cascade' }),
    startTime: instant('start_time').notNull(),
    endTime: instant('end_time').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('idle_sessions_entry_start_idx').on(t.timeEntryId, t.startTime)],
);

/** As in pg.ts: kept by triggers on time_entries (migration 0003_time_entry_counts). */
export const timeEntryCounts = sqliteTable('time_entry_counts', {
  userId: integer('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  entries: integer('entries').notNull(),
});

export const featureFlags = sqliteTable('feature_flags', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  key: text('key').notNull().unique(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  isEnabled: integer('is_enabled', { mode: 'boolean' }).notNull(),
  rolloutPercentage: integer('rollout_percentage').notNull(),
  createdAt: createdAt(),
  updatedAt: instant('updated_at').notNull(),
});

export const featureFlagUsers = sqliteTable(
  'feature_flag_users',
  {
    flagId: integer('flag_id').notNull().references(() => featureFlags.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.flagId, t.userId] }), index('feature_flag_users_user_idx').on(t.userId)],
);

export const featureAccessEvents = sqliteTable(
  'feature_access_events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    flagId: integer('flag_id').notNull().references(() => featureFlags.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    accessedAt: instant('accessed_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    accessedDay: text('accessed_day').generatedAlwaysAs(sql`strftime('%Y-%m-%d', accessed_at / 1000, 'unixepoch')`, { mode: 'virtual' }),
  },
  (t) => [index('feature_access_events_flag_time_idx').on(t.flagId, t.accessedAt)],
);

export const featureFlagAudit = sqliteTable(
  'feature_flag_audit',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    flagKey: text('flag_key').notNull(),
    actorId: integer('actor_id').references(() => users.id, { onDelete: 'set null' }),
    action: text('action').notNull(),
    before: text('before'),
    after: text('after'),
    createdAt: createdAt(),
  },
  (t) => [index('feature_flag_audit_flag_idx').on(t.flagKey, t.id)],
);

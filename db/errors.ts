import { PoolStalled } from './postgres-pool';

/** True when a query failed on a unique constraint, on either dialect (drizzle wraps driver errors). */
export const isUniqueViolation = (error: unknown): boolean =>
  hasCode(error, ['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

/** True when a query failed because a row it refers to is not there (any more), on either dialect. */
export const isForeignKeyViolation = (error: unknown): boolean => hasCode(error, ['23503', 'SQLITE_CONSTRAINT_FOREIGNKEY']);

/**
 * What says that Postgres could not be reached or did not answer in time, rather than that the
 * query was wrong: the socket's errors, SQLSTATE class 08 (connection exception), a server shutting
 * down or refusing connections (57P01–57P03, 53300), a statement cancelled by statement_timeout
 * (57014), and pg's and the pool's own timeouts, which carry only a message.
 */
const UNAVAILABLE_CODES = [
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  '08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300', '57014',
];
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect$/,
  // pg's Client when its own connectionTimeoutMillis passes (db/postgres-pool.ts sets it there).
  /^timeout expired$/,
  /^Query read timeout$/,
  /is not queryable$/,
];

/**
 * What says that the query met a conflicting one and may well succeed if run again: Postgres's
 * deadlock (40P01), serialization failure (40001) and lock not available (55P03), SQLite's busy and
 * locked database (another process held its write lock past the busy timeout).
 */
const CONFLICT_CODES = ['40P01', '40001', '55P03', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_LOCKED'];

/** True when a query failed on a conflict with another one: worth trying again in a moment. */
export const isTransientConflict = (error: unknown): boolean => hasCode(error, CONFLICT_CODES);

/** True when a query failed because the database is unreachable or not answering (Postgres; SQLite is in process). */
export const isDatabaseUnavailable = (error: unknown): boolean =>
  hasCode(error, UNAVAILABLE_CODES) ||
  causes(error).some((e) => e instanceof PoolStalled || UNAVAILABLE_MESSAGES.some((message) => message.test(e.message)));

function causes(error: unknown): Error[] {
  const chain: Error[] = [];
  for (let e: unknown = error; e instanceof Error && chain.length < 10; e = e.cause) chain.push(e);
  return chain;
}

function hasCode(error: unknown, codes: string[]): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.includes(code)) return true;
  }
  return false;
}

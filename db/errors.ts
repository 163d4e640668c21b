/** True when a query failed on a unique constraint, on either dialect (drizzle wraps driver errors). */
export const isUniqueViolation = (error: unknown): boolean =>
  hasCode(error, ['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

/** True when a query failed because a row it refers to is not there (any more), on either dialect. */
export const isForeignKeyViolation = (error: unknown): boolean => hasCode(error, ['23503', 'SQLITE_CONSTRAINT_FOREIGNKEY']);

function hasCode(error: unknown, codes: string[]): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.includes(code)) return true;
  }
  return false;
}

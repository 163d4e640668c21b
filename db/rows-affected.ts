/** How many rows a write without `returning()` changed: node-postgres says rowCount, better-sqlite3 changes. */
export function rowsAffected(result: unknown): number {
  const { rowCount, changes } = result as { rowCount?: number | null; changes?: number };
  return rowCount ?? changes ?? 0;
}

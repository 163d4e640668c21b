import { sql, type SQL, type SQLWrapper } from 'drizzle-orm';

export type SortDirection = 'asc' | 'desc';

/**
 * Rows after a position in an order by (key, id): `(key, id) > (?, ?)` ascending, `<` descending.
 * A row-value comparison, which both dialects answer from a composite index on (…, key, id) as a
 * range scan; the expanded `key < ? OR (key = ? AND id < ?)` makes SQLite use only the index's
 * prefix and scan the rest. `keyValue` must be bound with its column's encoder (`sql.param(v, column)`)
 * where the dialects store the value differently (times).
 */
export function rowsAfter(key: SQLWrapper, id: SQLWrapper, keyValue: unknown, idValue: unknown, direction: SortDirection): SQL {
  return direction === 'asc' ? sql`(${key}, ${id}) > (${keyValue}, ${idValue})` : sql`(${key}, ${id}) < (${keyValue}, ${idValue})`;
}

export const reverse = (direction: SortDirection): SortDirection => (direction === 'asc' ? 'desc' : 'asc');

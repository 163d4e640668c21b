import { z } from 'zod';
import { ValidationFailed } from '../errors';

/**
 * Opaque cursors for keyset pagination: the sort key of the last row of a page, as base64url JSON.
 * Decoding validates the shape, so a tampered cursor is a 400, never a query error.
 */
export function encodeCursor(position: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, shape: z.ZodType<T>): T {
  try {
    const parsed = shape.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'), refuseNull));
    if (parsed.success) return parsed.data;
  } catch {
    // not base64url JSON, or a NUL in it: reported below like any other bad cursor
  }
  throw ValidationFailed.field('cursor', 'Invalid cursor.');
}

/** None of ours holds a NUL, and Postgres cannot compare with a text that does (a 500): refused as any bad cursor. */
function refuseNull(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && value.includes('\0')) throw new Error('a NUL in a cursor');
  return value;
}

/**
 * The last instant a cursor may carry, 9999-12-31T23:59:59.999Z: a Date goes further, but Postgres
 * refuses a later one as it is bound (toISOString writes the year 10000 as `+010000`), a 500.
 */
export const LAST_INSTANT_MS = 253_402_300_799_999;

/** One page of a keyset list: its items, and the cursor of the next page when there is one. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** The page of `rows`, read with one row more than `limit`, and the cursor after its last item. */
export function pageOf<T>(rows: T[], limit: number, positionOf: (last: T) => Record<string, unknown>): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(positionOf(last)) : null };
}

/** The cursor of a list in id order: the last id of the page. */
export const IdCursor = z.object({ i: z.number().int().min(1).max(2_147_483_647) }).strict();

/** What a paged list is asked for: the page size, and the cursor of a Link header. */
export interface PageRequest {
  limit: number;
  cursor?: string;
}

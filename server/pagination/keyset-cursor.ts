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
    const parsed = shape.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // not base64url JSON: reported below like any other bad cursor
  }
  throw ValidationFailed.field('cursor', 'Invalid cursor.');
}

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

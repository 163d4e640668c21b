import type { z } from 'zod';
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

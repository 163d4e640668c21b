import { extendApi, generateSchema } from '@anatine/zod-openapi';
import { z } from 'zod';

/**
 * `extendApi` on a copy: extendApi writes into the schema it is given, so describing a shared schema
 * (IntId, Duration…) for one field described every use of it in openapi.json, the last writer winning.
 */
type SchemaObject = NonNullable<Parameters<typeof extendApi>[1]>;

export function documented<T extends z.ZodTypeAny>(schema: T, meta: SchemaObject): T {
  const copy = schema.describe(schema.description as string) as T;
  return extendApi(copy, { ...(schema as { metaOpenApi?: SchemaObject }).metaOpenApi, ...meta });
}

/** Bodies of every error response, as the original (DRF) clients expect them. */
export const FieldErrors = extendApi(z.record(z.array(z.string())), {
  description: 'Validation errors: each invalid field with its messages; `non_field_errors` for the body as a whole.',
  example: { username: ['A user with that username already exists.'] },
});
export const Detail = extendApi(z.object({ detail: z.string() }), {
  description: 'An error that concerns the request as a whole.',
  example: { detail: 'Not found.' },
});
export const BadRequest = z.union([FieldErrors, Detail]);

// Not `as const`: spreading a readonly object turns its numeric keys into strings ("400"), which
// ts-rest's inference does not read as statuses, and the SDK's answers were typed without them.
export const errors = {
  badRequest: { 400: BadRequest },
  unauthorized: { 401: Detail },
  forbidden: { 403: Detail },
  notFound: { 404: Detail },
  tooManyRequests: { 429: Detail },
};

/**
 * Who may call a route, as its `metadata` says; without metadata, any user with a valid token. The
 * server's authentication, its 405 handler and the OpenAPI document all read it through routeAccess.
 */
export interface RouteAccess {
  /** No token needed (register, login, the health check). */
  public?: boolean;
  /** Administrators only: others get 403 before their input is even looked at. */
  adminOnly?: boolean;
}

export const routeAccess = (route: object | undefined): RouteAccess =>
  (route as { metadata?: RouteAccess } | undefined)?.metadata ?? {};

/**
 * Responses every authenticated route can give besides its own. (429 is declared where a limit
 * applies: the open-connection cap here, the write limit by the OpenAPI document's implicit responses.)
 */
export const authenticatedErrors = { ...errors.unauthorized };

export const Timestamp = extendApi(z.string().datetime(), {
  description: 'ISO 8601 UTC with milliseconds.',
  example: '2025-11-29T20:00:00.000Z',
});

export const Duration = extendApi(z.string().regex(/^\d{2,}:[0-5]\d:[0-5]\d$/), {
  description: 'HH:MM:SS; hours may pass 24.',
  example: '02:15:00',
});

const MAX_ID = 2_147_483_647;

/** A positive integer id in a body. */
export const IdField = z.number().int().min(1).max(MAX_ID);

/** A positive integer id taken from a path segment: plain digits only (no `0x1`, `1e0` or `01`). */
export const IntId = extendApi(z.string().regex(/^[1-9]\d{0,9}$/).transform(Number).pipe(IdField), {
  type: 'integer',
  minimum: 1,
  maximum: MAX_ID,
});

/** `true` or `false` in a query string. */
export const BooleanFilter = z.enum(['true', 'false']).transform((value) => value === 'true');

/**
 * A page size in a query string: plain digits only (no ` 5`, `1e1` or `0x10`, which Number() would
 * take), 1 to `max`, `fallback` when absent.
 */
export const PageLimit = (fallback: number, max: number) =>
  extendApi(
    z
      .string()
      .regex(/^\d{1,6}$/, 'A valid integer is required.')
      .transform(Number)
      .pipe(z.number().int().min(1).max(max))
      .default(String(fallback)),
    { type: 'integer', minimum: 1, maximum: max, default: fallback },
  );

/**
 * The query of a list paged like the notifications list: a page size, and the cursor of its Link
 * header, at most `cursorLength` long (more where the cursor carries a text, such as a title).
 */
export const PageQuery = (fallback: number, max: number, cursorLength = 200) => ({
  limit: PageLimit(fallback, max),
  cursor: extendApi(z.string().max(cursorLength), { description: 'From the `Link: <…>; rel="next"` header; opaque.' }).optional(),
});

/** The description of a list that stays a JSON array with its next page in the Link header. */
export const PAGED_ARRAY = 'A JSON array. When there are more, the `Link` header holds the next page: `<…?cursor=…>; rel="next"`.';

/**
 * An array of `min` to `max` elements whose length is checked before its elements: zod checks every
 * element of an over-long array first (49,000 of them fit in a 100 KB body), this refuses it at once,
 * as one problem. Typed, and described in openapi.json, as the plain array it checks against.
 */
export function BoundedArray<T extends z.ZodTypeAny>(element: T, { min = 0, max }: { min?: number; max: number }): z.ZodArray<T> {
  const checked = min > 0 ? z.array(element).min(min).max(max) : z.array(element).max(max);
  const lengthFirst = z.array(z.unknown()).max(max).pipe(checked);
  return extendApi(lengthFirst, generateSchema(checked)) as unknown as z.ZodArray<T>;
}

export const Title = z.string().trim().min(1).max(200);
export const Description = z.string().max(5000);

/** A person's first or last name: trimmed, bounded, may be empty. */
export const PersonName = z.string().trim().max(150);

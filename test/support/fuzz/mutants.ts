import fc from 'fast-check';
import type { JsonSchema } from './schema-arbitrary';

/** Where a value travels: a URL or a header must stay within the HTTP server's 16 KB of head. */
export type Carrier = 'body' | 'url' | 'header';

/**
 * The most bytes a huge value may take as sent (JSON-escaped in a body, percent-escaped in a URL):
 * over any length a schema allows, under the limits of the layers below the API (100 KB bodies,
 * 16 KB heads), which have tests of their own.
 */
const BUDGET: Record<Carrier, number> = { body: 40_000, url: 3_000, header: 3_000 };

export const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** An own property, even for `__proto__` (an object literal would set the prototype instead). */
function withOwn(key: string, value: unknown): Record<string, unknown> {
  return Object.defineProperty({}, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * `{"__proto__": {"is_admin": true}}`, `{"constructor": {"prototype": {"polluted": 1}}}` and the
 * like: what a merge or a path-setter would turn into a property of every object.
 */
export const prototypeKeyed: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.array(fc.constantFrom(...PROTOTYPE_KEYS, 'a'), { minLength: 1, maxLength: 3 }),
    fc.constantFrom('polluted', 'is_admin', 'isAdmin', 'toString', 'toJSON', 'length', 'then'),
    fc.constantFrom<unknown>(true, 1, 'yes', null, [1], {}),
  )
  .filter(([path]) => path.some((key) => key !== 'a'))
  .map(([path, name, leaf]) => path.reduceRight((inner, key) => withOwn(key, inner), withOwn(name, leaf)));

/** Strings that have broken parsers, loggers, databases and terminals. */
const AWKWARD = [
  '\u0000',
  'a\u0000b',
  '\u0007\u0008\u001b[31m',
  '\r\n',
  '\u202e',
  '\u200b',
  '\ufeff',
  '\ud800',
  'x\udfffx',
  '\uffff',
  '\u{1d11e}',
  '\u{1f469}\u200d\u{1f469}\u200d\u{1f467}',
  '\ufdfa',
  'I\u0307',
  'e\u0301\u0301\u0301',
  '%00',
  '%',
  '../../etc/passwd',
  "'; drop table users; --",
  '${7*7}{{7*7}}',
  '<script>alert(1)</script>',
  'null',
  'true',
  '-0',
  '1e309',
  'NaN',
  '0x10',
  ' ',
  '\t',
];

const awkwardString = fc.oneof(
  fc.constantFrom(...AWKWARD),
  fc.array(fc.constantFrom(...AWKWARD), { minLength: 2, maxLength: 6 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', maxLength: 30 }),
  // Control characters only.
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code)), minLength: 1, maxLength: 10 }),
);

const JSON_TYPES = {
  string: fc.string({ maxLength: 20 }),
  integer: fc.integer(),
  number: fc.double({ noNaN: true, noDefaultInfinity: true }),
  boolean: fc.boolean(),
  object: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
  array: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
} as const;

/** A value of another JSON type than the schema's. */
function wrongTypeOf(schema: JsonSchema): fc.Arbitrary<unknown> {
  const others = Object.entries(JSON_TYPES).filter(
    ([type]) => type !== schema.type && !(schema.type === 'number' && type === 'integer'),
  );
  return fc.oneof(...others.map(([, arbitrary]) => arbitrary as fc.Arbitrary<unknown>));
}

/** How many bytes one character of `filler` takes where it travels. */
const bytesOf = (filler: string, carrier: Carrier) =>
  carrier === 'body' ? Buffer.byteLength(JSON.stringify(filler)) - 2 : Buffer.byteLength(encodeURIComponent(filler));

function hugeOf(schema: JsonSchema, carrier: Carrier): fc.Arbitrary<unknown> {
  const tooLong = (schema.maxLength ?? 0) + 1;
  const fillers = ['x', '9', 'é', '\u{1d11e}', '\u0000', ' '];
  const strings = fillers.flatMap((filler) => {
    // A filler's string length counts UTF-16 units, as the schema's maxLength does.
    const longest = Math.floor(BUDGET[carrier] / bytesOf(filler, carrier)) * filler.length;
    return longest < tooLong ? [] : [fc.integer({ min: tooLong, max: longest }).map((length) => filler.repeat(Math.ceil(length / filler.length)))];
  });
  const tooMany = (schema.maxItems ?? 0) + 1;
  // Small numbers, a few bytes each: even 10,001 of them stay within the body budget.
  const arrays = fc.integer({ min: tooMany, max: Math.max(tooMany, 1000) }).map((length) => Array.from({ length }, (_, i) => i % 10));
  const candidates = [...strings, ...(carrier === 'body' ? [arrays] : [])];
  // A URL or header parameter allowed more than the budget: just over its limit has to do.
  return candidates.length > 0 ? fc.oneof(...candidates) : fc.constant('x'.repeat(tooLong));
}

/** Just outside what the schema allows, and numbers JavaScript and databases handle badly. */
function outOfRangeOf(schema: JsonSchema): fc.Arbitrary<unknown> {
  const edges: unknown[] = [-1, 0, 0.5, -0.5, 1.5, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 1, -(2 ** 63), 1e308, -1e308, Number.EPSILON];
  if (schema.minimum !== undefined) edges.push(schema.minimum - 1, schema.minimum - 0.5);
  if (schema.maximum !== undefined) edges.push(schema.maximum + 1, schema.maximum + 0.5);
  if (schema.minLength) edges.push('x'.repeat(schema.minLength - 1));
  if (schema.maxLength !== undefined) edges.push('x'.repeat(schema.maxLength + 1));
  if (schema.enum) {
    const words = schema.enum.filter((value): value is string => typeof value === 'string');
    edges.push(...words.flatMap((word) => [word.toLowerCase(), ` ${word}`, `${word}\u0000`]).filter((word) => !words.includes(word)));
  }
  return fc.constantFrom(...edges);
}

/** Deep, but far from the 10,000 levels of the body attacks: this one must stay printable. */
const nested = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.integer({ min: 2, max: 50 }).map((depth) => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown),
  fc.integer({ min: 2, max: 50 }).map((depth) => JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as unknown),
);

/**
 * A value a field should be refused for, or at least survive: each kind the issue lists — wrong
 * type, empty, huge, null, nested objects and arrays, prototype keys, unicode and control
 * characters, numbers out of range.
 */
export function mutantOf(schema: JsonSchema, carrier: Carrier): fc.Arbitrary<unknown> {
  return fc.oneof(
    wrongTypeOf(schema),
    fc.constantFrom<unknown>('', [], {}),
    hugeOf(schema, carrier),
    fc.constant(null),
    nested,
    prototypeKeyed,
    awkwardString,
    outOfRangeOf(schema),
  );
}

import fc from 'fast-check';

/** The part of JSON Schema (OpenAPI 3.0's dialect) that request parameters and bodies use. */
export interface JsonSchema {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array';
  nullable?: boolean;
  enum?: unknown[];
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
}

/** Keywords that say nothing about which values are valid. */
const ANNOTATIONS = new Set(['description', 'example', 'examples', 'default', 'title', 'deprecated']);

const UNDERSTOOD = new Set([
  'type',
  'nullable',
  'enum',
  'oneOf',
  'anyOf',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'items',
  'properties',
  'required',
  'additionalProperties',
]);

/** Longest valid array generated: long enough to be a list, short enough to keep requests small. */
const MAX_GENERATED_ITEMS = 5;

/**
 * Values the schema accepts. A keyword it does not know is an error rather than ignored: a new
 * domain that uses one should extend this mapping, not be fuzzed with "valid" values that are not.
 */
export function valueOf(schema: JsonSchema): fc.Arbitrary<unknown> {
  assertUnderstood(schema);
  const value = nonNullValueOf(schema);
  return schema.nullable ? fc.option(value, { nil: null }) : value;
}

function assertUnderstood(schema: JsonSchema): void {
  const unknown = Object.keys(schema).filter((key) => !UNDERSTOOD.has(key) && !ANNOTATIONS.has(key));
  if (unknown.length > 0) throw new Error(`schema-arbitrary: unsupported keyword(s) ${unknown.join(', ')} in ${JSON.stringify(schema)}`);
}

function nonNullValueOf(schema: JsonSchema): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) return fc.oneof(...alternatives.map(valueOf));
  switch (schema.type) {
    case 'string':
      return stringOf(schema);
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -(2 ** 31), max: schema.maximum ?? 2 ** 31 - 1 });
    case 'number':
      return fc.double({ min: schema.minimum, max: schema.maximum, noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return arrayOf(schema);
    case 'object':
      return objectOf(schema);
    case undefined:
      // No type: any JSON value is valid.
      return fc.jsonValue({ maxDepth: 2 });
    default:
      throw new Error(`schema-arbitrary: unsupported type ${JSON.stringify(schema.type)}`);
  }
}

const instants = fc.date({ min: new Date('1970-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });

const FORMATS: Record<string, fc.Arbitrary<string>> = {
  'date-time': instants.map((date) => date.toISOString()),
  // RFC 3339's full-date: a real day, YYYY-MM-DD.
  date: instants.map((date) => date.toISOString().slice(0, 10)),
  uuid: fc.uuid(),
};

function stringOf(schema: JsonSchema): fc.Arbitrary<string> {
  const { minLength = 0, maxLength = Number.MAX_SAFE_INTEGER } = schema;
  let strings: fc.Arbitrary<string>;
  if (schema.format !== undefined) {
    strings = FORMATS[schema.format];
    if (!strings) throw new Error(`schema-arbitrary: unsupported string format ${JSON.stringify(schema.format)}`);
  } else if (schema.pattern !== undefined) {
    // The document carries the pattern without its flags; the contract's patterns are Unicode ones (\p{L}).
    strings = fc.stringMatching(new RegExp(schema.pattern, 'u'));
  } else {
    strings = fc.string({ unit: 'grapheme', minLength, maxLength: Math.min(maxLength, 200) });
  }
  // Lengths count UTF-16 code units, as the server's zod does; a grapheme may be several. The
  // server trims what it stores, so a value that is only padding is not a valid one.
  return strings.filter((value) => value.length <= maxLength && value.trim().length >= minLength);
}

function arrayOf(schema: JsonSchema): fc.Arbitrary<unknown[]> {
  const minLength = schema.minItems ?? 0;
  const maxLength = Math.min(schema.maxItems ?? MAX_GENERATED_ITEMS, minLength + MAX_GENERATED_ITEMS);
  return fc.array(valueOf(schema.items ?? {}), { minLength, maxLength });
}

function objectOf(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  if (Object.keys(properties).length === 0 && typeof schema.additionalProperties === 'object') {
    return fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), valueOf(schema.additionalProperties), { maxKeys: 3 });
  }
  const arbitraries = Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, valueOf(property)]));
  return fc.record(arbitraries, { requiredKeys: schema.required ?? [] });
}

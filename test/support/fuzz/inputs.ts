import fc from 'fast-check';
import { asText, percentEncode } from './encoding';
import { mutantOf, PROTOTYPE_KEYS, prototypeKeyed, type Carrier } from './mutants';
import { parametersIn, type Operation, type Parameter } from './operations';
import { valueOf, type JsonSchema } from './schema-arbitrary';

/** A body sent as bytes with headers of its own, for what JSON.stringify cannot express. */
export interface RawBody {
  /** What it is, for the report. */
  kind: string;
  /** Whether every operation must refuse it (4xx), whatever its schema. */
  refused: boolean;
  headers: Record<string, string>;
  bytes: Buffer;
}

/** One generated request, before fixtures fill in the path: what fast-check prints on a failure. */
export interface FuzzInput {
  /** Who sends it: an actor's name, or 'nobody' (no Authorization header). */
  as: string;
  /** The actor whose objects the path names, when not the sender's own. */
  objectsOf?: string;
  /** An Authorization header in place of the sender's. */
  authorization?: string;
  /** Path segments in place of the fixtures' ids, sent as written (escapes and all). */
  path?: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  /** A JSON body (absent: none). */
  body?: unknown;
  rawBody?: RawBody;
  /** What was changed from a valid request. */
  change?: string;
}

export interface ValidInputOptions {
  /** The senders to choose from. */
  as: string[];
  objectsOf?: string;
  /** Parameters given a fixed value (a long-poll's timeout, so that it waits one second, not thirty). */
  pinned?: Record<string, unknown>;
}

function parametersArbitrary(parameters: Parameter[], pinned: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const arbitraries = Object.fromEntries(
    parameters.map(({ name, schema }) => [name, name in pinned ? fc.constant(pinned[name]) : valueOf(schema)]),
  );
  const requiredKeys = parameters.filter(({ name, required }) => required || name in pinned).map(({ name }) => name);
  return fc.record(arbitraries, { requiredKeys });
}

/** Requests the document says are valid (path parameters come from fixtures). */
export function validInput(operation: Operation, options: ValidInputOptions): fc.Arbitrary<FuzzInput> {
  const pinned = options.pinned ?? {};
  return fc
    .record({
      as: fc.constantFrom(...options.as),
      query: parametersArbitrary(parametersIn(operation, 'query'), pinned),
      headers: parametersArbitrary(parametersIn(operation, 'header'), pinned),
      ...(operation.body ? { body: valueOf(operation.body) } : {}),
    })
    .map((input) => ({ ...input, ...(options.objectsOf ? { objectsOf: options.objectsOf } : {}) }));
}

/** An id no object has, of a path parameter's type: the largest integer it allows, or a nil-ish UUID. */
function idOfNothing(parameter: Parameter): string {
  if (parameter.schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
  if (parameter.schema.type === 'integer') return String(parameter.schema.maximum ?? 2 ** 31 - 1);
  // A key (a feature flag's): well-formed, and no fixture is ever named so.
  const key = 'zz-no-such-object';
  if (parameter.schema.type === 'string' && (!parameter.schema.pattern || new RegExp(parameter.schema.pattern).test(key))) return key;
  throw new Error(`idOfNothing: no id of nothing for ${JSON.stringify(parameter.schema)}`);
}

/** Path segments that name no object, for each path parameter of the operation. */
export const pathOfNothing = (operation: Operation): Record<string, string> =>
  Object.fromEntries(parametersIn(operation, 'path').map((parameter) => [parameter.name, idOfNothing(parameter)]));

/** A value put into a request at one place; `label` names the place for the report. */
interface Change {
  label: string;
  apply(input: FuzzInput): FuzzInput;
}

type FieldPath = Array<string | number>;

interface BodyField {
  path: FieldPath;
  schema: JsonSchema;
  required: boolean;
}

/** Every field of a body schema, nested ones and array items (as index 0) included. */
function bodyFields(schema: JsonSchema, path: FieldPath = []): BodyField[] {
  if (schema.type === 'array' && schema.items) {
    return [{ path: [...path, 0], schema: schema.items, required: false }, ...bodyFields(schema.items, [...path, 0])];
  }
  return Object.entries(schema.properties ?? {}).flatMap(([name, property]) => [
    { path: [...path, name], schema: property, required: schema.required?.includes(name) ?? false },
    ...bodyFields(property, [...path, name]),
  ]);
}

const labelOf = (path: FieldPath) => `body${path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${key}`)).join('')}`;

/** `target` with the value at `path` replaced (undefined: removed), creating containers on the way. */
function withValueAt(target: unknown, path: FieldPath, value: unknown): unknown {
  if (path.length === 0) return value;
  const [key, ...rest] = path;
  const container = (
    Array.isArray(target) ? [...target] : target !== null && typeof target === 'object' ? { ...target } : typeof key === 'number' ? [] : {}
  ) as Record<string | number, unknown>;
  const inner = withValueAt(container[key], rest, value);
  if (inner === undefined) delete container[key];
  // Defined, not assigned: the key may be `__proto__`.
  else Object.defineProperty(container, key, { value: inner, enumerable: true, writable: true, configurable: true });
  return container;
}

const setParameter = (input: FuzzInput, parameter: Parameter, value: unknown): FuzzInput => {
  if (parameter.in === 'path') return { ...input, path: { ...input.path, [parameter.name]: percentEncode(asText(value)) } };
  const where = parameter.in === 'query' ? 'query' : 'headers';
  return { ...input, [where]: withValueAt(input[where], [parameter.name], value) as Record<string, unknown> };
};

const carrierOf = (parameter: Parameter): Carrier => (parameter.in === 'header' ? 'header' : 'url');

/**
 * The places a mutation can change, by name: each parameter and each body field given a mutant,
 * the body as a whole replaced, a required field left out, an unknown query parameter or field added.
 */
function placesOf(operation: Operation): Record<string, fc.Arbitrary<Change>> {
  const places: Record<string, fc.Arbitrary<Change>> = {};
  for (const parameter of operation.parameters) {
    const label = `${parameter.in}.${parameter.name}`;
    places[label] = mutantOf(parameter.schema, carrierOf(parameter)).map((value) => ({ label, apply: (input) => setParameter(input, parameter, value) }));
  }
  places['query.(unknown)'] = fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 10 })).map(([name, value]) => ({
    label: `query.${name} (unknown)`,
    apply: (input) => ({ ...input, query: withValueAt(input.query, [name], value) as Record<string, unknown> }),
  }));
  if (!operation.body) return places;

  places.body = mutantOf(operation.body, 'body').map((value) => ({ label: 'body', apply: (input) => ({ ...input, body: value }) }));
  for (const { path, schema, required } of bodyFields(operation.body)) {
    const label = labelOf(path);
    places[label] = mutantOf(schema, 'body').map((value) => ({ label, apply: (input) => ({ ...input, body: withValueAt(input.body, path, value) }) }));
    if (required) {
      places[`${label} left out`] = fc.constant({
        label: `${label} left out`,
        apply: (input) => ({ ...input, body: withValueAt(input.body, path, undefined) }),
      });
    }
  }
  places['body.(unknown)'] = fc
    .tuple(fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.constantFrom(...PROTOTYPE_KEYS)), fc.jsonValue({ maxDepth: 2 }))
    .map(([name, value]) => ({ label: `body.${name} (unknown)`, apply: (input) => ({ ...input, body: withValueAt(input.body, [name], value) }) }));
  return places;
}

const changed = (valid: fc.Arbitrary<FuzzInput>, change: fc.Arbitrary<Change>) =>
  fc.tuple(valid, change).map(([input, { label, apply }]) => ({ ...apply(input), change: label }));

/** For each place of the request (by its name), valid requests with that place changed into something hostile. */
export function mutatedInputs(operation: Operation, valid: fc.Arbitrary<FuzzInput>): Record<string, fc.Arbitrary<FuzzInput>> {
  return Object.fromEntries(Object.entries(placesOf(operation)).map(([place, change]) => [place, changed(valid, change)]));
}

/** A valid request, or one with some place mutated. */
export const anyInput = (operation: Operation, valid: fc.Arbitrary<FuzzInput>) =>
  fc.oneof(valid, ...Object.values(mutatedInputs(operation, valid)));

/**
 * A valid request with prototype keys (`__proto__`, `constructor`, `prototype`, at any depth) in
 * its query string, in its body or in a body field, or as a header's name.
 */
export function prototypeInput(operation: Operation, valid: fc.Arbitrary<FuzzInput>): fc.Arbitrary<FuzzInput> {
  const places: Array<fc.Arbitrary<Change>> = [
    fc.tuple(fc.constantFrom(...PROTOTYPE_KEYS, 'filter'), prototypeKeyed).map(([name, value]) => ({
      label: `query.${name}`,
      apply: (input) => ({ ...input, query: withValueAt(input.query, [name], value) as Record<string, unknown> }),
    })),
    fc.constantFrom(...PROTOTYPE_KEYS).map((name) => ({
      label: `header ${name}`,
      apply: (input) => ({ ...input, headers: withValueAt(input.headers, [name], 'polluted') as Record<string, unknown> }),
    })),
  ];
  if (operation.body) {
    const paths: FieldPath[] = [[], ...bodyFields(operation.body).map(({ path }) => path)];
    places.push(
      fc.tuple(fc.constantFrom(...paths), prototypeKeyed).map(([path, value]) => ({
        label: `${labelOf(path)} ← prototype keys`,
        // At the top: the keys join the body's own fields; below: they replace a field's value.
        apply: (input) => ({ ...input, body: path.length === 0 ? { ...(input.body as object), ...value } : withValueAt(input.body, path, value) }),
      })),
    );
  }
  return changed(valid, fc.oneof(...places));
}

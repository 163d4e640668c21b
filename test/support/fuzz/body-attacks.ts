import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { FuzzInput } from './inputs';

interface BodyAttack {
  kind: string;
  /**
   * Refused (4xx) by the HTTP layer whatever the operation's schema: a type other than JSON, an
   * encoding it cannot read, too big, not JSON at all. The others are JSON the schema judges.
   */
  refused: boolean;
  /** The bytes and headers, from a valid body's JSON text and a number to vary with. */
  make(json: string, n: number): { headers: Record<string, string>; bytes: Buffer };
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const OVER_LIMIT = 150 * 1024;
/** Ten thousand levels: a recursive parser or validator runs out of stack long before. */
const DEPTH = 10_000;

const asJson = (bytes: Buffer | string, headers: Record<string, string> = {}) => ({
  headers: { ...JSON_TYPE, ...headers },
  bytes: Buffer.from(bytes),
});

/** The same JSON text under another Content-Type (or none). */
const typed = (type: string): BodyAttack => ({
  kind: type ? `Content-Type: ${type}` : 'no Content-Type',
  refused: true,
  make: (json) => ({ headers: type ? { 'Content-Type': type } : ({} as Record<string, string>), bytes: Buffer.from(json) }),
});

const encoded = (encoding: string, what = 'a plain body', bytes = (json: string) => Buffer.from(json)): BodyAttack => ({
  kind: `Content-Encoding: ${encoding} on ${what}`,
  refused: true,
  make: (json) => asJson(bytes(json), { 'Content-Encoding': encoding }),
});

const malformed = (kind: string, text: (json: string, n: number) => string): BodyAttack => ({
  kind: `malformed JSON: ${kind}`,
  refused: true,
  make: (json, n) => asJson(text(json, n)),
});

/** Bytes that are not UTF-8: a stray continuation, an overlong slash, an encoded surrogate, 0xFF. */
const NOT_UTF8 = [Buffer.from([0xc3, 0x28]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff, 0xfe]), Buffer.from([0x80])];

/** `json` with bad bytes at the start of its first string value (or as a new field's value). */
function withInvalidUtf8(json: string, n: number): Buffer {
  const bad = NOT_UTF8[n % NOT_UTF8.length];
  const at = json.indexOf(':"');
  if (at < 0) return Buffer.concat([Buffer.from('{"x":"'), bad, Buffer.from('"}')]);
  return Buffer.concat([Buffer.from(json.slice(0, at + 2)), bad, Buffer.from(json.slice(at + 2))]);
}

/** `json` with the first field's value replaced by `nested` (or the whole body when it has no field). */
function withFirstValue(json: string, nested: string): string {
  const match = /^\{("(?:[^"\\]|\\.)*"):/.exec(json);
  return match ? `{${match[1]}:${nested}}` : nested;
}

const ATTACKS: BodyAttack[] = [
  typed('text/plain'),
  typed('application/x-www-form-urlencoded'),
  typed('multipart/form-data; boundary=fuzz'),
  typed('application/xml'),
  typed('application/jsonx'),
  typed(''),
  typed('application/json; charset=latin1'),
  typed('application/json; charset=utf-16'),
  encoded('gzip'),
  encoded('deflate'),
  encoded('br'),
  encoded('zstd'),
  encoded('bogus'),
  encoded('gzip', 'a gzip stream cut short', (json) => gzipSync(json).subarray(0, -6)),
  {
    kind: 'Content-Encoding: gzip that inflates past the body limit',
    refused: true,
    make: () => asJson(gzipSync(`{"x":"${' '.repeat(OVER_LIMIT)}"}`), { 'Content-Encoding': 'gzip' }),
  },
  {
    kind: 'body over the 100 KB limit',
    refused: true,
    make: (json) => asJson(withFirstValue(json, JSON.stringify('x'.repeat(OVER_LIMIT)))),
  },
  malformed('cut short', (json, n) => json.slice(0, 1 + (n % Math.max(1, json.length - 1)))),
  malformed('trailing comma', (json) => json.replace(/\}$/, ',}')),
  malformed('single quotes', (json) => (json.includes('"') ? json.replaceAll('"', "'") : "{'x': 1}")),
  malformed('NaN', (json) => withFirstValue(json, 'NaN')),
  malformed('a comment', (json) => `/* fuzz */${json}`),
  malformed('two values', (json) => `${json}${json}`),
  malformed('a NUL byte before it', (json) => `\u0000${json}`),
  { kind: `${DEPTH} nested arrays`, refused: false, make: () => asJson('['.repeat(DEPTH) + ']'.repeat(DEPTH)) },
  {
    kind: `${DEPTH} nested objects in a field`,
    refused: false,
    make: (json) => asJson(withFirstValue(json, '{"a":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH))),
  },
  { kind: 'invalid UTF-8', refused: false, make: (json, n) => asJson(withInvalidUtf8(json, n)) },
];

/** For each attack (by its name), valid requests whose body is sent that way. */
export const withAttackedBodies = (valid: fc.Arbitrary<FuzzInput>): Record<string, fc.Arbitrary<FuzzInput>> =>
  Object.fromEntries(ATTACKS.map((attack) => [attack.kind, withAttackedBody(valid, attack)]));

function withAttackedBody(valid: fc.Arbitrary<FuzzInput>, attack: BodyAttack): fc.Arbitrary<FuzzInput> {
  return fc.tuple(valid, fc.nat()).map(([input, n]) => {
    const rawBody = { kind: attack.kind, refused: attack.refused, ...attack.make(JSON.stringify(input.body ?? {}), n) };
    // A failure report names the attack and its headers rather than printing 150 KB of bytes.
    const printable = Object.assign(rawBody, {
      [fc.toStringMethod]: () => `${rawBody.kind} ${JSON.stringify(rawBody.headers)} (${rawBody.bytes.length} bytes)`,
    });
    return { ...input, body: undefined, rawBody: printable, change: attack.kind };
  });
}

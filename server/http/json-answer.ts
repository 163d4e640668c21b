import { hash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * Writes a JSON answer on a bare node response exactly as express's `res.status(status).json(body)`
 * writes it in this app (no JSON replacer, spaces or escaping set): the same Content-Type with its
 * charset, Content-Length, and weak ETag of the body, in that order. For the routes served before
 * express (see http/lean-route.ts), whose answers must not differ from the
 * express route's by a byte; a GET answered here never carries If-None-Match (those go to express,
 * which may answer 304).
 *
 * `head` comes first: headers as a flat list (name, value, name, value …). The head is written in
 * one go: on a response with no header set yet, node takes the list as it is, without the header
 * object setHeader builds (a tenth of what a delivered long-poll allocated); headers set already
 * stay in front.
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, head: readonly string[] = []): void {
  // Kept a string, not copied into a Buffer as express does: the bytes are the same.
  const payload = JSON.stringify(body);
  const length = Buffer.byteLength(payload, 'utf8');
  res.writeHead(status, [...head, 'Content-Type', JSON_TYPE, 'Content-Length', String(length), 'ETag', weakEtag(payload, length)]);
  res.end(payload, 'utf8');
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The weak ETag express gives a body (its `etag` package's format: the length in hex and the first
 * 27 characters of the base64 SHA-1), with node's one-shot `hash`: the package's createHash() took
 * 4 % of the CPU of a broadcast to 10,000 long-polls. test/lean-routes.test.ts holds it to the package.
 */
export function weakEtag(payload: string, byteLength: number): string {
  return `W/"${byteLength.toString(16)}-${hash('sha1', payload, 'base64').slice(0, 27)}"`;
}

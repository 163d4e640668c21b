import type { ServerResponse } from 'node:http';
import etag from 'etag';

/**
 * Writes a JSON answer on a bare node response exactly as express's `res.status(status).json(body)`
 * writes it in this app (no JSON replacer, spaces or escaping set): the same Content-Type with its
 * charset, Content-Length, and weak ETag of the body, in that order. For the routes served before
 * express (see http/lean-route.ts), whose answers must not differ from the
 * express route's by a byte; a GET answered here never carries If-None-Match (those go to express,
 * which may answer 304).
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', payload.length);
  res.setHeader('ETag', etag(payload, { weak: true }));
  res.end(payload);
}

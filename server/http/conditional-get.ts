import type { Express, Request } from 'express';

/**
 * 304 to a GET (or HEAD) whose If-None-Match names the ETag of its answer (express makes a weak
 * ETag for every body) — also when the request says `Cache-Control: no-cache`. express's own
 * freshness refuses then (a browser's hard reload), but fetch() adds that header to every request
 * that carries If-None-Match (the Fetch standard's "no-store" mode), so no fetch client, in a
 * browser or in Node, would ever get its 304. RFC 9110 §13.1.2 has the origin server evaluate
 * If-None-Match; no-cache is addressed to caches.
 */
export function answerConditionalGets(app: Express): void {
  Object.defineProperty(app.request, 'fresh', {
    configurable: true,
    get(this: Request): boolean {
      if (this.method !== 'GET' && this.method !== 'HEAD') return false;
      const status = this.res!.statusCode;
      if (!((status >= 200 && status < 300) || status === 304)) return false;
      return namesEtag(this.headers['if-none-match'], this.res!.getHeader('ETag'));
    },
  });
}

/** Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 §8.8.3.2). */
export function namesEtag(ifNoneMatch: string | undefined, etag: unknown): boolean {
  if (!ifNoneMatch || typeof etag !== 'string') return false;
  if (ifNoneMatch.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => opaque(tag) === opaque(etag));
}

import type { ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';
import type { RequestHandler } from 'express';

/**
 * helmet's security headers, those that mean something for a JSON API (OWASP's REST cheat sheet):
 * nothing an answer carries may load or run anything (`default-src 'none'`) or be framed, no MIME
 * sniffing, no referrer, HTTPS only. helmet's other defaults are for HTML pages (DNS prefetch,
 * downloads in old IE, Flash policies, cross-origin isolation) and would double the size of a small
 * answer's headers for nothing: a `check` answer went from 404 to 862 bytes and lost a fifth of its
 * rate. The docs page is the one HTML the server sends, and gets the policy it needs
 * (docsSecurityHeaders).
 */
export const JSON_API_HEADERS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  crossOriginResourcePolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

/** JSON_API_HEADERS on every answer (see fixedHeaders). */
export const securityHeaders = (): RequestHandler => fixedHeaders(helmet(JSON_API_HEADERS));

/**
 * For the docs page (Swagger UI): its own scripts and styles (inline styles included, which the UI
 * sets), images from itself and data: URLs, requests to this server (its "Try it out"), and still
 * no framing.
 */
export const docsSecurityHeaders = (): RequestHandler =>
  helmet.contentSecurityPolicy({
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      fontSrc: ["'self'", 'data:'],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      frameAncestors: ["'none'"],
    },
  });

/**
 * What `middleware` does to an answer's headers, done by one loop. helmet works its headers out
 * anew for every request (its Content-Security-Policy middleware joins the directives each time),
 * though with this configuration they never depend on the request: 3 % of the busy time of a
 * broadcast to 10,000 long-polls went there, and as much of a small answer's. So helmet runs once,
 * against a response that only records what it sets and removes, and every answer gets the same, in
 * the same order. The list is also on the middleware (fixedHeadersOf), for answers written in one go.
 */
function fixedHeaders(middleware: RequestHandler): RequestHandler {
  const headers = new Map<string, [string, string]>();
  const removed = new Set<string>();
  const recorder: Pick<ServerResponse, 'setHeader' | 'removeHeader'> = {
    setHeader(name, value) {
      if (typeof value !== 'string') throw new Error(`the security headers middleware set ${name} to a non-string`);
      // As node keeps them: a header set again keeps its place and takes the latest spelling.
      headers.set(name.toLowerCase(), [name, value]);
      return this as ServerResponse;
    },
    removeHeader(name) {
      headers.delete(name.toLowerCase());
      removed.add(name);
    },
  };
  let ran = false;
  middleware({} as never, recorder as never, (error?: unknown) => {
    if (error) throw error;
    ran = true;
  });
  if (!ran) throw new Error('the security headers middleware did not run at once');
  const list = [...headers.values()];
  const flat: readonly string[] = list.flat();
  // What it removes goes first: a header it sets after removing it is in the list.
  const removals = [...removed].filter((name) => !headers.has(name.toLowerCase()));
  const handler: RequestHandler = (_req, res, next) => {
    for (const name of removals) res.removeHeader(name);
    for (const [name, value] of list) res.setHeader(name, value);
    next();
  };
  return Object.assign(handler, { [FIXED]: flat });
}

const FIXED = Symbol('fixed headers');

/**
 * The headers a middleware made by fixedHeaders sets on every answer, as a flat list (name, value,
 * name, value …, in its order); undefined for any other middleware.
 */
export const fixedHeadersOf = (middleware: RequestHandler): readonly string[] | undefined =>
  (middleware as RequestHandler & { [FIXED]?: readonly string[] })[FIXED];

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
 * the same order.
 */
function fixedHeaders(middleware: RequestHandler): RequestHandler {
  const steps: Array<(res: ServerResponse) => void> = [];
  const recorder: Pick<ServerResponse, 'setHeader' | 'removeHeader'> = {
    setHeader(name, value) {
      steps.push((res) => res.setHeader(name, value));
      return this as ServerResponse;
    },
    removeHeader: (name) => void steps.push((res) => res.removeHeader(name)),
  };
  let ran = false;
  middleware({} as never, recorder as never, (error?: unknown) => {
    if (error) throw error;
    ran = true;
  });
  if (!ran) throw new Error('the security headers middleware did not run at once');
  return (_req, res, next) => {
    for (const step of steps) step(res);
    next();
  };
}

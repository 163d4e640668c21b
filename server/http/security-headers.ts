import helmet from 'helmet';
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
export const securityHeaders = (): RequestHandler =>
  helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    xFrameOptions: { action: 'deny' },
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });

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

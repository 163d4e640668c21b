import helmet from 'helmet';
import type { RequestHandler } from 'express';

/**
 * helmet's security headers, fit for a JSON API: nothing an answer carries may load or run anything
 * (`default-src 'none'`) or be framed. The docs page is the one HTML the server sends, and gets the
 * policy it needs (docsSecurityHeaders).
 */
export const securityHeaders = (): RequestHandler =>
  helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } });

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

import { ValidationFailed } from '../errors';

/** `url` (absolute, or a path with its query) with `cursor=…` set in place of any cursor it had. */
export function pageUrl(url: string, cursor: string): string {
  const absolute = /^https?:\/\//.test(url);
  const parsed = new URL(url, 'http://placeholder');
  parsed.searchParams.set('cursor', cursor);
  return absolute ? parsed.toString() : `${parsed.pathname}${parsed.search}`;
}

/** A Host header's value: a name, or an IPv4 or bracketed IPv6 address, and a port. */
const HOST = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** What an absolute page URL is written from: express's request. */
export interface RequestUrl {
  /** `http` or `https` (X-Forwarded-Proto behind a trusted proxy). */
  protocol: string;
  originalUrl: string;
  get(name: string): string | undefined;
}

/**
 * The request's own URL, absolute, with `cursor=…` set (a list's `next` and `previous`), on the
 * scheme and host the request names. A Host header that is no host (`a b`, a port out of range, none
 * at all from an HTTP/1.0 client) is a 400 on `host`, as Django refuses one: it made the URL fail to
 * parse (a 500), and `x/y?z=` or `u@h` moved it to another path or host. So is a scheme other than
 * http or https (X-Forwarded-Proto), on `x-forwarded-proto`.
 */
export function absolutePageUrl(req: RequestUrl, cursor: string): string {
  return pageUrl(`${originOf(req)}${req.originalUrl}`, cursor);
}

function originOf(req: RequestUrl): string {
  // Only a trusted proxy's X-Forwarded-Proto makes it other than the socket's, but such a proxy may pass on the client's.
  const scheme = req.protocol.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw ValidationFailed.field('x-forwarded-proto', 'Not http or https.');
  const host = req.get('host') ?? '';
  if (HOST.test(host)) {
    try {
      return new URL(`${scheme}://${host}`).origin;
    } catch {
      // a port past 65535, an IPv6 address that is none: refused below
    }
  }
  throw ValidationFailed.field('host', 'Not a valid host.');
}

/** `Link: <same path and query, with cursor=…>; rel="next"` (RFC 8288; relative to the request). */
export function nextPageLink(originalUrl: string, cursor: string): string {
  return `<${pageUrl(originalUrl, cursor)}>; rel="next"`;
}

/**
 * The answer of a paged list whose body stays a JSON array (what existing clients read): the
 * page's items, serialized, with the next page in the Link header.
 */
export function pagedAnswer<T, W>(
  page: { items: T[]; nextCursor: string | null },
  serialize: (item: T) => W,
  req: { originalUrl: string },
  res: { setHeader(name: string, value: string): unknown },
) {
  if (page.nextCursor) res.setHeader('Link', nextPageLink(req.originalUrl, page.nextCursor));
  return { status: 200 as const, body: page.items.map(serialize) };
}

/** `url` (absolute, or a path with its query) with `cursor=…` set in place of any cursor it had. */
export function pageUrl(url: string, cursor: string): string {
  const absolute = /^https?:\/\//.test(url);
  const parsed = new URL(url, 'http://placeholder');
  parsed.searchParams.set('cursor', cursor);
  return absolute ? parsed.toString() : `${parsed.pathname}${parsed.search}`;
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

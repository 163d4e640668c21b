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

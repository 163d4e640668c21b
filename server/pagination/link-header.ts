/** `Link: <same path and query, with cursor=…>; rel="next"` (RFC 8288; relative to the request). */
export function nextPageLink(originalUrl: string, cursor: string): string {
  const url = new URL(originalUrl, 'http://placeholder');
  url.searchParams.set('cursor', cursor);
  return `<${url.pathname}${url.search}>; rel="next"`;
}

/** Percent-encodes every byte of the UTF-8 form but the unreserved ones (a lone surrogate becomes U+FFFD). */
export function percentEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((byte) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
}

/** A value as one text: strings as they are, anything else as JSON. */
export const asText = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value) ?? '');

/**
 * A query string as `qs` (express's parser) reads it: objects in brackets (`a[b][c]=1`), arrays as
 * repeated keys, null as a bare key. This is how prototype keys reach the query parser:
 * `constructor[prototype][polluted]=1`.
 */
export function queryString(params: Record<string, unknown>): string {
  const pairs: string[] = [];
  const add = (key: string, value: unknown) => {
    if (value === undefined) return;
    if (value === null) pairs.push(key);
    else if (Array.isArray(value)) for (const item of value) add(key, item);
    else if (typeof value === 'object') for (const [name, inner] of Object.entries(value)) add(`${key}[${percentEncode(name)}]`, inner);
    else pairs.push(`${key}=${percentEncode(String(value))}`);
  };
  for (const [name, value] of Object.entries(params)) add(percentEncode(name), value);
  return pairs.length > 0 ? `?${pairs.join('&')}` : '';
}

/**
 * A value as a header can carry it: UTF-8 bytes read as Latin-1 (what a client sending UTF-8
 * puts on the wire), without the control characters that HTTP does not allow in a header.
 */
export function headerValue(value: unknown): string {
  return Buffer.from(asText(value), 'utf8')
    .toString('latin1')
    .replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');
}

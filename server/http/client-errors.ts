import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { fixedHeadersOf, securityHeaders } from './security-headers';

/** Node's codes for requests its parser refuses before express sees them, and our answer to each. */
const STATUS_OF: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/**
 * A request that Node's HTTP parser refuses (headers over 16 KB, a malformed request line or
 * header) never reaches express: Node answers it with a bare status and no body. Answer it the way
 * the API answers everything else, as JSON with a `detail`, the security headers and a request id
 * (a fresh one: the request's own was not read).
 */
export function answerClientErrorsAsJson(server: Server): void {
  const security = pairs(fixedHeadersOf(securityHeaders())!);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = STATUS_OF[error.code ?? ''] ?? 400;
    const body = JSON.stringify({ detail: `${STATUS_CODES[status]}.` });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nX-Request-Id: ${randomUUID()}\r\n${security}` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

/** A flat header list (name, value, …) as header lines. */
function pairs(flat: readonly string[]): string {
  let lines = '';
  for (let i = 0; i < flat.length; i += 2) lines += `${flat[i]}: ${flat[i + 1]}\r\n`;
  return lines;
}

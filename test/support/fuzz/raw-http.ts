import http from 'node:http';

/** A request sent byte for byte as written: a broken escape in the path stays broken. */
export interface RawRequest {
  method: string;
  /** Path and query string, already encoded (or deliberately not). */
  path: string;
  /** Pairs, not an object: a header may be called `__proto__`. */
  headers: Array<[string, string]>;
  body?: Buffer;
}

export type RawAnswer =
  | { answered: true; status: number; headers: http.IncomingHttpHeaders; text: string }
  | { answered: false };

/** A stream never ends: its status and headers are the whole answer. */
const isStream = (response: http.IncomingMessage) => /^text\/event-stream\b/.test(response.headers['content-type'] ?? '');

/**
 * Sends one request on a connection of its own, so a broken request cannot spoil the next one.
 * `{answered: false}` when no complete answer came within `timeoutMs` (a long-poll still waiting);
 * a connection closed without any answer is an error.
 */
export function sendRaw(origin: string, request: RawRequest, timeoutMs: number): Promise<RawAnswer> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (answer: RawAnswer) => {
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const req = http.request({ host: hostname, port, method: request.method, path: request.path, agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      settle({ answered: false });
    }, timeoutMs);
    for (const [name, value] of request.headers) req.setHeader(name, value);
    if (request.body) req.setHeader('Content-Length', request.body.length);

    req.on('response', (response) => {
      const answer = { answered: true as const, status: response.statusCode!, headers: response.headers };
      if (isStream(response)) {
        req.destroy();
        return settle({ ...answer, text: '' });
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => settle({ ...answer, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (error) => {
      // Writing a body the server already refused (413) may fail once its answer has come.
      if (settled) return;
      clearTimeout(timer);
      reject(new Error(`${request.method} ${request.path}: connection failed without an answer: ${error.message}`));
    });
    req.end(request.body);
  });
}

// Long-poll clients for the benchmark: one keep-alive socket each (node:http, one shared agent with
// no socket cap), each re-polling as soon as an answer arrives.
import http from 'node:http';

export interface LongPollBody {
  status: 'immediate' | 'new_notification' | 'timeout';
  notifications: Array<{ id: string; message: string; type: string }>;
  has_new_notifications: boolean;
}

/**
 * The clients connect from four loopback addresses in turn: one source address has some 28,000
 * ephemeral ports towards the server's one port (net.ipv4.ip_local_port_range), too few for 50,000.
 */
export const SOURCE_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

type ResponseListener = (client: number, body: LongPollBody, at: number) => void;

export interface ClientCounters {
  responses: number;
  byStatus: Record<string, number>;
  /** Requests that failed (socket error, non-200 answer); each is retried after a short pause. */
  errors: number;
  /** Non-200 answers by status code. */
  httpErrors: Record<string, number>;
  /** Socket errors by code (ECONNRESET, EMFILE…). */
  socketErrors: Record<string, number>;
  /** Notifications a client received more than once (at-least-once delivery shows here). */
  duplicates: number;
}

export class LongPollClients {
  // Every free socket kept: after a broadcast all of them are free at once, before their clients re-poll
  // (the default keeps 256 and closes the rest, and their re-polls would have to connect anew).
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity, noDelay: true });
  private readonly inFlight = new Map<number, http.ClientRequest>();
  private readonly started = new Set<number>();
  private readonly seen = new Map<number, Set<string>>();
  private readonly listeners = new Set<ResponseListener>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  readonly counters: ClientCounters = { responses: 0, byStatus: {}, errors: 0, httpErrors: {}, socketErrors: {}, duplicates: 0 };

  constructor(
    private readonly port: number,
    private readonly tokens: readonly string[],
    private readonly timeoutSeconds = 60,
    /** One answer per client, no re-poll (warm-up). */
    private readonly once = false,
  ) {}

  get size(): number {
    return this.started.size;
  }

  /** Starts polling for the clients numbered `from` (inclusive) to `to` (exclusive). */
  start(from: number, to: number): void {
    for (let client = from; client < to; client++) {
      if (this.started.has(client)) continue;
      this.started.add(client);
      this.poll(client);
    }
  }

  /** Calls `listener` with every 200 answer; returns the function that removes it. */
  onResponse(listener: ResponseListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the time of `client`'s first answer that satisfies `match`. */
  waitFor(client: number, match: (body: LongPollBody) => boolean, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`client ${client}: no matching long-poll answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onResponse((from, body, at) => {
        if (from !== client || !match(body)) return;
        clearTimeout(timer);
        off();
        resolve(at);
      });
    });
  }

  /** Stops re-polling and closes every socket. */
  close(): void {
    this.stopped = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const request of this.inFlight.values()) request.destroy();
    this.inFlight.clear();
    this.agent.destroy();
  }

  private poll(client: number): void {
    if (this.stopped) return;
    const request = http.request({
      host: '127.0.0.1',
      port: this.port,
      path: `/api/notifications/long-poll/?timeout=${this.timeoutSeconds}`,
      agent: this.agent,
      localAddress: SOURCE_ADDRESSES[client % SOURCE_ADDRESSES.length],
      headers: { Authorization: `Token ${this.tokens[client]}` },
      // Bounded: a wait never legitimately lasts much longer than the long-poll timeout.
      timeout: (this.timeoutSeconds + 30) * 1000,
    });
    this.inFlight.set(client, request);
    request.on('timeout', () => request.destroy(new Error('long-poll exceeded its timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (this.inFlight.get(client) === request) this.inFlight.delete(client);
      if (this.stopped) return;
      this.counters.errors++;
      const code = error.code ?? error.message;
      this.counters.socketErrors[code] = (this.counters.socketErrors[code] ?? 0) + 1;
      this.retryLater(client);
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', () => {});
      response.on('end', () => {
        const at = performance.now();
        if (this.inFlight.get(client) === request) this.inFlight.delete(client);
        if (this.stopped) return;
        if (response.statusCode !== 200) {
          this.counters.errors++;
          const code = String(response.statusCode);
          this.counters.httpErrors[code] = (this.counters.httpErrors[code] ?? 0) + 1;
          this.retryLater(client);
          return;
        }
        let body: LongPollBody;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LongPollBody;
        } catch {
          this.counters.errors++;
          this.retryLater(client);
          return;
        }
        this.record(client, body);
        for (const listener of [...this.listeners]) listener(client, body, at);
        // Not synchronously: node's agent frees the keep-alive socket on the next tick, and a
        // request made before that would open a second connection and leave this one idle.
        if (!this.once) setImmediate(() => this.poll(client));
      });
    });
    request.end();
  }

  private record(client: number, body: LongPollBody): void {
    this.counters.responses++;
    this.counters.byStatus[body.status] = (this.counters.byStatus[body.status] ?? 0) + 1;
    if (body.notifications.length === 0) return;
    let seen = this.seen.get(client);
    if (!seen) this.seen.set(client, (seen = new Set()));
    for (const notification of body.notifications) {
      if (seen.has(notification.id)) this.counters.duplicates++;
      else seen.add(notification.id);
    }
  }

  private retryLater(client: number): void {
    if (this.once) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.poll(client);
    }, 250);
    this.retryTimers.add(timer);
  }
}

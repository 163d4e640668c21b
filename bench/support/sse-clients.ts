// Server-Sent Events clients for the benchmark: one stream each (node:http, no agent), read as they
// come; each event's data is handed to the listeners with the time it was read.
import http from 'node:http';
import { SOURCE_ADDRESSES } from './long-poll-clients';

export interface StreamEvent {
  id: string;
  message: string;
}

type EventListener = (client: number, event: StreamEvent, at: number) => void;

export class SseClients {
  private readonly requests = new Map<number, http.ClientRequest>();
  private readonly listeners = new Set<EventListener>();
  readonly counters = { opened: 0, events: 0, errors: 0, httpErrors: {} as Record<string, number> };

  constructor(
    private readonly port: number,
    private readonly tokens: readonly string[],
  ) {}

  get size(): number {
    return this.requests.size;
  }

  /** Opens the streams of the clients numbered `from` (inclusive) to `to` (exclusive). */
  start(from: number, to: number): void {
    for (let client = from; client < to; client++) if (!this.requests.has(client)) this.open(client);
  }

  /** Calls `listener` with every event; returns the function that removes it. */
  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const request of this.requests.values()) request.destroy();
    this.requests.clear();
  }

  private open(client: number): void {
    const request = http.request({
      host: '127.0.0.1',
      port: this.port,
      path: '/api/notifications/sse/',
      agent: false,
      localAddress: SOURCE_ADDRESSES[client % SOURCE_ADDRESSES.length],
      headers: { Authorization: `Token ${this.tokens[client]}`, Accept: 'text/event-stream' },
    });
    this.requests.set(client, request);
    request.on('error', () => {
      this.counters.errors++;
    });
    request.on('response', (response) => {
      if (response.statusCode !== 200) {
        this.counters.errors++;
        const code = String(response.statusCode);
        this.counters.httpErrors[code] = (this.counters.httpErrors[code] ?? 0) + 1;
        response.resume();
        return;
      }
      this.counters.opened++;
      response.setEncoding('utf8');
      let pending = '';
      response.on('data', (chunk: string) => {
        const at = performance.now();
        pending += chunk;
        const events = pending.split('\n\n');
        pending = events.pop() ?? '';
        for (const event of events) this.dispatch(client, event, at);
      });
      response.on('error', () => {});
    });
    request.end();
  }

  private dispatch(client: number, event: string, at: number): void {
    const data = /^data: (.*)$/m.exec(event)?.[1];
    if (data === undefined) return; // retry: and heartbeats
    this.counters.events++;
    const { id, message } = JSON.parse(data) as StreamEvent;
    for (const listener of [...this.listeners]) listener(client, { id, message }, at);
  }
}

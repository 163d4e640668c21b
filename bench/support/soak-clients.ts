// The soak's clients (bench/soak.ts): one per user, long-polling or streaming (SSE), each request
// sent to one of the instances as a load balancer would (the other one after a failure), cut at
// random moments as real clients are (a tab closed, a network change), and every notification it
// receives logged with the moment it arrived.
import http from 'node:http';

export type Transport = 'long-poll' | 'sse';

export interface SoakUser {
  id: number;
  token: string;
  transport: Transport;
}

/** A notification as a client received it. */
export interface Receipt {
  notificationId: string;
  /** The user whose client received it. */
  userId: number;
  at: number;
}

/** A request the client cut itself while it was open: what the server wrote meanwhile may be lost. */
export interface Abort {
  userId: number;
  startedAt: number;
  abortedAt: number;
}

export interface ClientOptions {
  ports: () => number[];
  /** Chance that a request (a poll, a stream) is cut by the client at a random moment. */
  disconnectChance: number;
  /** How long a stream stays open at most before the client drops it. */
  maxStreamMs: number;
}

const LONG_POLL_SECONDS = 20;

/** Epoch milliseconds: receipts are compared with the database's created_at and delivered_at. */
const wallClock = () => Date.now();

export class SoakClients {
  readonly receipts: Receipt[] = [];
  readonly aborts: Abort[] = [];
  readonly errors: Record<string, number> = {};
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly open = new Set<http.ClientRequest>();
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly users: SoakUser[],
    private readonly options: ClientOptions,
  ) {}

  start(): void {
    for (const [index, user] of this.users.entries()) this.loops.push(this.loop(user, index));
  }

  /** Stops every client and waits for their loops to end. */
  async stop(): Promise<void> {
    this.running = false;
    for (const request of this.open) request.destroy();
    await Promise.all(this.loops);
    this.agent.destroy();
  }

  private async loop(user: SoakUser, index: number): Promise<void> {
    let attempt = index;
    while (this.running) {
      const ports = this.options.ports();
      const port = ports[attempt++ % ports.length];
      const ok = await this.request(user, port).catch((error: NodeJS.ErrnoException) => {
        this.errors[error.code ?? error.message] = (this.errors[error.code ?? error.message] ?? 0) + 1;
        return false;
      });
      // After a failure (an instance gone, a 503), the next try goes to the other instance, soon.
      if (!ok && this.running) await sleep(100 + Math.random() * 400);
    }
  }

  /** One long-poll or one stream; resolves whether it ended normally. */
  private request(user: SoakUser, port: number): Promise<boolean> {
    const path = user.transport === 'sse' ? '/api/notifications/sse/' : `/api/notifications/long-poll/?timeout=${LONG_POLL_SECONDS}`;
    const startedAt = wallClock();
    return new Promise<boolean>((resolve, reject) => {
      const request = http.get({ host: '127.0.0.1', port, path, agent: this.agent, headers: { Authorization: `Token ${user.token}` } });
      this.open.add(request);
      const cutAfter = user.transport === 'sse' ? Math.random() * this.options.maxStreamMs : Math.random() * LONG_POLL_SECONDS * 1000;
      const cutting = Math.random() < this.options.disconnectChance || user.transport === 'sse';
      const cut = cutting
        ? setTimeout(() => {
            this.aborts.push({ userId: user.id, startedAt, abortedAt: wallClock() });
            request.destroy();
            resolve(true);
          }, cutAfter)
        : undefined;
      const done = () => {
        clearTimeout(cut);
        this.open.delete(request);
      };
      request.on('error', (error) => {
        done();
        if (!this.running) resolve(true);
        else reject(error);
      });
      request.on('response', (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          done();
          this.errors[`HTTP ${response.statusCode}`] = (this.errors[`HTTP ${response.statusCode}`] ?? 0) + 1;
          return resolve(false);
        }
        if (user.transport === 'sse') this.readStream(user, response);
        else this.readPoll(user, response);
        response.on('end', () => {
          done();
          resolve(true);
        });
        response.on('error', () => undefined);
      });
    });
  }

  private readPoll(user: SoakUser, response: http.IncomingMessage): void {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (text += chunk));
    response.on('end', () => {
      const at = wallClock();
      let body: { notifications: Array<{ id: string }> };
      try {
        body = JSON.parse(text);
      } catch {
        this.errors['unreadable answer'] = (this.errors['unreadable answer'] ?? 0) + 1;
        return;
      }
      for (const notification of body.notifications) this.receipts.push({ notificationId: notification.id, userId: user.id, at });
    });
  }

  private readStream(user: SoakUser, response: http.IncomingMessage): void {
    let buffer = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').find((line) => line.startsWith('data: '));
        if (data) this.receipts.push({ notificationId: (JSON.parse(data.slice(6)) as { id: string }).id, userId: user.id, at: wallClock() });
      }
    });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

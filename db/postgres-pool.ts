import pg from 'pg';

/** How long opening a connection may take before it fails (an unreachable server never answers). */
export const CONNECT_TIMEOUT_MS = 1000;

/**
 * How long waiting for a pooled connection may go on while the pool makes no progress at all (no
 * connection handed out, returned or opened): then the database is not slow, it is gone. A wait in
 * a queue that moves is never cut, however long: a broadcast to 10,000 long-polls queues thousands
 * of queries behind the pool's 10 connections, and they all get their turn.
 */
export const ACQUIRE_STALL_MS = 1000;

/** How often the waits are looked at. */
const SWEEP_MS = ACQUIRE_STALL_MS / 4;

/** How long one statement may run on the server before Postgres cancels it (statement_timeout). */
export const STATEMENT_TIMEOUT_MS = 10_000;

/** How long a query may wait for its answer at all: the statement timeout, and time for its answer to travel. */
const QUERY_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 2000;

/** Waiting for a pooled connection failed: the pool made no progress for ACQUIRE_STALL_MS. */
export class PoolStalled extends Error {
  constructor() {
    super(`no database connection came free for ${ACQUIRE_STALL_MS} ms: the database is not answering`);
    this.name = 'PoolStalled';
  }
}

/** pg's Client with a connect timeout of its own: the pool's would also cut waits in its queue. */
class TimedClient extends pg.Client {
  constructor(config: pg.ClientConfig = {}) {
    super({ ...config, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  }
}

type Checkout = (error: Error | undefined, client: pg.PoolClient | undefined, release: (error?: Error) => void) => void;

interface Waiter {
  since: number;
  fail(): void;
}

/**
 * A pg pool that fails fast when Postgres is gone, and only then: opening a connection times out
 * after CONNECT_TIMEOUT_MS, a statement after STATEMENT_TIMEOUT_MS (server-side, and client-side
 * a little later for a server that cannot even say so), and a wait for a connection when the whole
 * pool has been stuck for ACQUIRE_STALL_MS (PoolStalled). A request meets one of them as an error
 * the error handler answers with 503, and the pool recovers by itself: the next connection it opens
 * after the outage works.
 */
export class GuardedPool extends pg.Pool {
  private lastProgress = performance.now();
  private lastSweep = performance.now();
  private readonly waiters = new Set<Waiter>();
  private sweeping: NodeJS.Timeout | undefined;

  constructor(config: pg.PoolConfig) {
    super({ ...config, Client: TimedClient, statement_timeout: STATEMENT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS });
    const progressed = () => {
      this.lastProgress = performance.now();
    };
    this.on('connect', progressed);
    this.on('acquire', progressed);
    this.on('release', progressed);
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: Checkout): void;
  override connect(callback?: Checkout): Promise<pg.PoolClient> | void {
    if (!callback) {
      return new Promise((resolve, reject) => this.connect((error, client) => (error ? reject(error) : resolve(client!))));
    }
    // A connection is free, or a new one may be opened (under its connect timeout): no queue to watch.
    if (this.idleCount > 0 || this.totalCount < (this.options.max ?? 10)) return super.connect(callback as never);
    this.waitInQueue(callback);
  }

  private waitInQueue(callback: Checkout): void {
    let settled = false;
    const waiter: Waiter = {
      since: performance.now(),
      fail: () => {
        settled = true;
        callback(new PoolStalled(), undefined, () => {});
      },
    };
    this.waiters.add(waiter);
    if (!this.sweeping) {
      this.lastSweep = performance.now();
      this.sweeping = setInterval(() => this.failStalledWaiters(), SWEEP_MS).unref();
    }
    super.connect(((error: Error | undefined, client: pg.PoolClient | undefined, release: (error?: Error) => void) => {
      this.waiters.delete(waiter);
      // Given up on already: the connection goes straight back.
      if (settled) return client && release();
      settled = true;
      callback(error, client, release);
    }) as never);
  }

  private failStalledWaiters(): void {
    const now = performance.now();
    // A sweep that comes late found the event loop blocked, not the pool: the answers Postgres sent
    // meanwhile wait unread in the sockets. Their progress shows by the next sweep.
    const loopWasBlocked = now - this.lastSweep > SWEEP_MS * 2;
    this.lastSweep = now;
    if (!loopWasBlocked && now - this.lastProgress >= ACQUIRE_STALL_MS) {
      for (const waiter of this.waiters) {
        if (now - waiter.since < ACQUIRE_STALL_MS) continue;
        this.waiters.delete(waiter);
        waiter.fail();
      }
    }
    if (this.waiters.size === 0) {
      clearInterval(this.sweeping);
      this.sweeping = undefined;
    }
  }
}

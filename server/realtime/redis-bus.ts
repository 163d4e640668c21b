import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isWakeup, Listeners, type BusListener, type BusMessage, type InstanceBus, type Wakeup } from './bus';

/**
 * One channel per kind of message, on the same two connections: an instance of a version that does
 * not know a kind is not subscribed to its channel, so instances of two versions can run side by side.
 */
const WAKEUPS = 'punchclock:notifications';
const FLAGS_CHANGED = 'punchclock:feature-flags';
/** How long a Redis command may take before Redis counts as not answering. */
const COMMAND_TIMEOUT_MS = 1000;
const HEALTH_CHECK_MS = 2000;

interface Envelope {
  from: string;
  /** Only on the wake-ups' channel; the other kinds carry nothing but their channel. */
  wakeup?: Wakeup;
}

/** What failed to go out, kept small: one wake-up merged from all of them, and whether flags changed. */
interface Unsent {
  wakeup?: Wakeup;
  flagsChanged?: boolean;
}

/**
 * Redis pub/sub across instances. Local listeners are woken directly (no round trip, and still
 * woken while Redis is down); the instance's own messages coming back from Redis are ignored.
 * ioredis reconnects by itself; while the subscriber is not ready the bus reports itself unhealthy
 * so that the delivery hub falls back to polling the database. A publish that fails is sent again
 * once the publisher is back: the other instances' subscribers may never have been down (only this
 * connection dropped), and then nothing else would wake their waiters.
 */
export class RedisBus implements InstanceBus {
  private readonly instanceId = randomUUID();
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly listeners = new Listeners<BusMessage>();
  private readonly healthListeners = new Listeners<boolean>();
  private isHealthy = false;
  /** Messages whose publish failed, sent again when the publisher is ready. */
  private unsent: Unsent = {};
  /** Whether Redis has confirmed the subscription on the subscriber's current connection. */
  private subscribed = false;
  /** Whether the last PING on the subscriber's connection was answered in time. */
  private answering = true;
  private readonly healthCheck: NodeJS.Timeout;

  private constructor(
    url: string,
    private readonly logger: Logger,
    healthCheckMs: number,
  ) {
    const options = {
      // Fail publishes fast while disconnected instead of queueing them: the hub's fallback
      // polling finds those notifications in the database.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
    // A Redis that holds the connection but does not answer must not hold up the request that
    // creates a notification: the publish gives up, and is sent again when Redis is back.
    this.publisher = new Redis(url, { ...options, commandTimeout: COMMAND_TIMEOUT_MS });
    this.subscriber = new Redis(url, { ...options, enableOfflineQueue: true, commandTimeout: COMMAND_TIMEOUT_MS });
    this.publisher.on('error', () => {});
    this.publisher.on('ready', () => void this.publishUnsent());
    this.subscriber.on('error', (error) => this.logger.debug({ err: error }, 'redis subscriber error'));
    this.subscriber.on('ready', () => {
      this.answering = true;
      void this.resubscribe();
    });
    this.subscriber.on('close', () => {
      this.subscribed = false;
      this.updateHealth();
    });
    this.subscriber.on('message', (channel: string, raw: string) => this.receive(channel, raw));
    // A Redis that keeps the connection open but has stopped answering (frozen, overloaded) closes
    // nothing: only a PING that goes unanswered tells, and then the hub polls the database.
    this.healthCheck = setInterval(() => void this.checkAnswering(), healthCheckMs);
    this.healthCheck.unref();
  }

  /** Connects and subscribes; rejects when Redis cannot be reached at start. */
  static async connect(url: string, logger: Logger, options: { healthCheckMs?: number } = {}): Promise<RedisBus> {
    const bus = new RedisBus(url, logger, options.healthCheckMs ?? HEALTH_CHECK_MS);
    try {
      await bus.subscribeChannel();
    } catch (error) {
      await bus.close();
      throw error;
    }
    return bus;
  }

  get healthy(): boolean {
    return this.isHealthy;
  }

  async publish(message: BusMessage): Promise<void> {
    this.listeners.emit(message);
    await this.send(message);
  }

  subscribe(listener: BusListener): () => void {
    return this.listeners.add(listener);
  }

  onHealthChange(listener: (healthy: boolean) => void): () => void {
    return this.healthListeners.add(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.healthCheck);
    this.subscriber.disconnect();
    this.publisher.disconnect();
  }

  private async send(message: BusMessage): Promise<void> {
    const [channel, envelope]: [string, Envelope] = isWakeup(message)
      ? [WAKEUPS, { from: this.instanceId, wakeup: message }]
      : [FLAGS_CHANGED, { from: this.instanceId }];
    try {
      await this.publisher.publish(channel, JSON.stringify(envelope));
    } catch (error) {
      this.unsent = isWakeup(message)
        ? { ...this.unsent, wakeup: mergeWakeups(this.unsent.wakeup, message) }
        : { ...this.unsent, flagsChanged: true };
      this.logger.warn({ err: error }, 'redis publish failed; sent again when Redis is back');
    }
  }

  private async publishUnsent(): Promise<void> {
    const { wakeup, flagsChanged } = this.unsent;
    this.unsent = {};
    if (flagsChanged) await this.send({ flagsChanged: true });
    if (wakeup) await this.send(wakeup);
  }

  private receive(channel: string, raw: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw);
    } catch {
      return;
    }
    if (envelope.from === this.instanceId) return;
    if (channel === FLAGS_CHANGED) this.listeners.emit({ flagsChanged: true });
    else if (envelope.wakeup) this.listeners.emit(envelope.wakeup);
  }

  /**
   * ioredis resubscribes after a reconnect by itself, but reports 'ready' before Redis has confirmed
   * it: a message published in between would be missed. The bus counts as healthy (and the hub
   * stops its database fallback) only once the subscription is confirmed.
   */
  private async subscribeChannel(): Promise<void> {
    await this.subscriber.subscribe(WAKEUPS, FLAGS_CHANGED);
    this.subscribed = true;
    this.updateHealth();
  }

  private async resubscribe(): Promise<void> {
    try {
      await this.subscribeChannel();
    } catch (error) {
      // The connection dropped again, or Redis does not answer: the next 'ready' or health check tries again.
      this.logger.debug({ err: error }, 'redis resubscribe failed');
    }
  }

  private async checkAnswering(): Promise<void> {
    if (this.subscriber.status !== 'ready') return;
    try {
      await this.subscriber.ping();
      this.answering = true;
    } catch {
      this.answering = false;
    }
    // A resubscribe that timed out on a connection that stayed open is not retried by a 'ready'.
    if (this.answering && !this.subscribed) await this.resubscribe();
    this.updateHealth();
  }

  private updateHealth(): void {
    this.setHealthy(this.subscriber.status === 'ready' && this.subscribed && this.answering);
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.isHealthy) return;
    this.isHealthy = healthy;
    this.logger[healthy ? 'info' : 'warn']({ healthy }, `redis bus ${healthy ? 'connected' : 'disconnected'}`);
    this.healthListeners.emit(healthy);
  }
}

/** Past this many users a pending wake-up becomes "everyone": what is kept stays small. */
const MAX_UNSENT_USERS = 10_000;

function mergeWakeups(pending: Wakeup | undefined, wakeup: Wakeup): Wakeup {
  if (!pending) return wakeup;
  if ('all' in pending || 'all' in wakeup) return { all: true };
  const userIds = [...new Set([...pending.userIds, ...wakeup.userIds])];
  return userIds.length > MAX_UNSENT_USERS ? { all: true } : { userIds };
}

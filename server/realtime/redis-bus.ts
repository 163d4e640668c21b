import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isWakeup, Listeners, type BusListener, type BusMessage, type InstanceBus, type Wakeup } from './bus';
import { connectRedis, type RedisTarget } from './redis-target';

/**
 * One channel per kind of message, on the same two connections: an instance of a version that does
 * not know a kind is not subscribed to its channel, so instances of two versions can run side by side.
 */
const WAKEUPS = 'punchclock:notifications';
const FLAGS_CHANGED = 'punchclock:feature-flags';
const USERS_CHANGED = 'punchclock:users';
const CHANNELS = [WAKEUPS, FLAGS_CHANGED, USERS_CHANGED];
/** How long a Redis command may take before Redis counts as not answering. */
const COMMAND_TIMEOUT_MS = 1000;
const HEALTH_CHECK_MS = 2000;

interface Envelope {
  from: string;
  /** On the wake-ups' channel. */
  wakeup?: Wakeup;
  /** On the users' channel. */
  userIds?: number[];
}

/** The channel and envelope that carry `message`. */
function wireOf(message: BusMessage, from: string): [string, Envelope] {
  if (isWakeup(message)) return [WAKEUPS, { from, wakeup: message }];
  if ('flagsChanged' in message) return [FLAGS_CHANGED, { from }];
  return [USERS_CHANGED, { from, userIds: message.usersChanged }];
}

/** The message an envelope on `channel` carries; undefined for one it cannot (from a newer version, say). */
function messageOf(channel: string, envelope: Envelope): BusMessage | undefined {
  if (channel === WAKEUPS) return envelope.wakeup;
  if (channel === FLAGS_CHANGED) return { flagsChanged: true };
  if (channel === USERS_CHANGED && Array.isArray(envelope.userIds)) return { usersChanged: envelope.userIds };
  return undefined;
}

/** Past this many users a pending wake-up becomes "everyone": what is kept stays small. */
const MAX_UNSENT_USERS = 10_000;

/** Messages whose publish failed, merged: one wake-up, one flag change, one set of changed users. */
class Unsent {
  private wakeup: Wakeup | undefined;
  private flagsChanged = false;
  private readonly usersChanged = new Set<number>();

  add(message: BusMessage): void {
    if (isWakeup(message)) this.wakeup = mergeWakeups(this.wakeup, message);
    else if ('flagsChanged' in message) this.flagsChanged = true;
    else for (const id of message.usersChanged) this.usersChanged.add(id);
  }

  /** Everything kept, emptying it. */
  take(): BusMessage[] {
    const messages: BusMessage[] = [];
    if (this.flagsChanged) messages.push({ flagsChanged: true });
    if (this.usersChanged.size > 0) messages.push({ usersChanged: [...this.usersChanged] });
    if (this.wakeup) messages.push(this.wakeup);
    this.wakeup = undefined;
    this.flagsChanged = false;
    this.usersChanged.clear();
    return messages;
  }
}

function mergeWakeups(pending: Wakeup | undefined, wakeup: Wakeup): Wakeup {
  if (!pending) return wakeup;
  if ('all' in pending || 'all' in wakeup) return { all: true };
  const userIds = [...new Set([...pending.userIds, ...wakeup.userIds])];
  return userIds.length > MAX_UNSENT_USERS ? { all: true } : { userIds };
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
  private readonly unsent = new Unsent();
  /** Whether Redis has confirmed the subscription on the subscriber's current connection. */
  private subscribed = false;
  /** Whether the last PING on the subscriber's connection was answered in time. */
  private answering = true;
  private readonly healthCheck: NodeJS.Timeout;

  private constructor(
    target: RedisTarget,
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
    this.publisher = connectRedis(target, { ...options, commandTimeout: COMMAND_TIMEOUT_MS });
    this.subscriber = connectRedis(target, { ...options, enableOfflineQueue: true, commandTimeout: COMMAND_TIMEOUT_MS });
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
  static async connect(target: RedisTarget, logger: Logger, options: { healthCheckMs?: number } = {}): Promise<RedisBus> {
    const bus = new RedisBus(target, logger, options.healthCheckMs ?? HEALTH_CHECK_MS);
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
    const [channel, envelope] = wireOf(message, this.instanceId);
    try {
      await this.publisher.publish(channel, JSON.stringify(envelope));
    } catch (error) {
      this.unsent.add(message);
      this.logger.warn({ err: error }, 'redis publish failed; sent again when Redis is back');
    }
  }

  private async publishUnsent(): Promise<void> {
    for (const message of this.unsent.take()) await this.send(message);
  }

  private receive(channel: string, raw: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw);
    } catch {
      return;
    }
    if (envelope.from === this.instanceId) return;
    const message = messageOf(channel, envelope);
    if (message) this.listeners.emit(message);
  }

  /**
   * ioredis resubscribes after a reconnect by itself, but reports 'ready' before Redis has confirmed
   * it: a message published in between would be missed. The bus counts as healthy (and the hub
   * stops its database fallback) only once the subscription is confirmed.
   */
  private async subscribeChannel(): Promise<void> {
    await this.subscriber.subscribe(...CHANNELS);
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

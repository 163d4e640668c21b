import type { Logger } from 'pino';
import { TooManyRequests } from '../errors';
import { isWakeup, type InstanceBus, type Wakeup } from './bus';

export interface DeliveryHubOptions {
  /** Long-polls and streams one user may hold open at once (a guard of memory, not a rate limit). */
  maxConnectionsPerUser: number;
  /** How often to look for undelivered notifications while the bus may be missing messages. */
  fallbackPollMs: number;
  logger: Logger;
}

/** Which of these users have undelivered notifications: the hub's only database question. */
export type FindUsersWithUndelivered = (userIds: number[]) => Promise<number[]>;

interface Subscriber {
  wake(): void;
  /** The server is shutting down: end the wait or the stream. */
  shutdown(): void;
  /**
   * The user's sessions changed (a logout, a revocation, on any instance): a connection checks that
   * its token still holds, and ends if it does not.
   */
  sessionsChanged?(): void;
}

/**
 * Waiting clients, in process, keyed by user. A waiter costs an entry in a map: nothing queries
 * the database while it waits. The bus wakes the users that have new notifications, and each
 * woken waiter reads its own. When the bus reports itself unhealthy (Redis down) the hub asks the
 * database every `fallbackPollMs` which waiting users have undelivered notifications, until the
 * bus is back; then it wakes everyone once, to catch up on what the outage hid.
 */
export class DeliveryHub {
  /** By user: the one subscriber most users have, or a set of them (no set held for one: 10,000 waiting users hold 10,000 fewer). */
  private readonly subscribers = new Map<number, Subscriber | Set<Subscriber>>();
  private readonly connections = new Map<number, number>();
  private readonly wakeListeners = new Set<(wakeup: Wakeup) => void>();
  private fallbackTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly detach: Array<() => void>;

  constructor(
    private readonly bus: InstanceBus,
    private readonly findUsersWithUndelivered: FindUsersWithUndelivered,
    private readonly options: DeliveryHubOptions,
  ) {
    this.detach = [
      bus.subscribe((message) => isWakeup(message) && this.deliver(message)),
      bus.subscribe((message) => 'usersChanged' in message && this.sessionsChanged(message.usersChanged)),
      bus.onHealthChange((healthy) => this.onBusHealth(healthy)),
    ];
    if (!bus.healthy) this.startFallbackPolling();
  }

  /** Counts a long-poll or stream against the user's cap; call the returned function when it ends. */
  acquireConnection(userId: number): () => void {
    const open = this.connections.get(userId) ?? 0;
    if (!this.hasRoomFor(userId)) {
      throw new TooManyRequests(
        1,
        `Too many open notification connections (at most ${this.options.maxConnectionsPerUser} per user).`,
      );
    }
    this.connections.set(userId, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.connections.get(userId) ?? 1) - 1;
      if (left > 0) this.connections.set(userId, left);
      else this.connections.delete(userId);
    };
  }

  /** Whether the user may open one more long-poll or stream (acquireConnection would not refuse it). */
  hasRoomFor(userId: number): boolean {
    return (this.connections.get(userId) ?? 0) < this.options.maxConnectionsPerUser;
  }

  /** Calls `wake` whenever the user may have new notifications, until the returned function is called. */
  subscribe(userId: number, subscriber: Subscriber): () => void {
    if (this.closed) {
      queueMicrotask(() => subscriber.shutdown());
      return () => {};
    }
    const present = this.subscribers.get(userId);
    if (!present) this.subscribers.set(userId, subscriber);
    else if (present instanceof Set) present.add(subscriber);
    else this.subscribers.set(userId, new Set([present, subscriber]));
    return () => this.unsubscribe(userId, subscriber);
  }

  private unsubscribe(userId: number, subscriber: Subscriber): void {
    const present = this.subscribers.get(userId);
    if (present === subscriber) return void this.subscribers.delete(userId);
    if (!(present instanceof Set) || !present.delete(subscriber)) return;
    if (present.size === 0) this.subscribers.delete(userId);
    else if (present.size === 1) this.subscribers.set(userId, present.values().next().value!);
  }

  /** The user's subscribers, as a list of their own: one that unsubscribes while they are told something changes nothing in it. */
  private subscribersOf(userId: number): Subscriber[] {
    const present = this.subscribers.get(userId);
    if (!present) return [];
    return present instanceof Set ? [...present] : [present];
  }

  /** Tells `listener` of every wake-up, before the subscribers hear of it; returns the function that stops. */
  onWake(listener: (wakeup: Wakeup) => void): () => void {
    this.wakeListeners.add(listener);
    return () => this.wakeListeners.delete(listener);
  }

  /**
   * Whether every wake-up reaches this hub: not while the bus reports itself unhealthy (it may be
   * missing messages then, and the hub polls the database instead), nor once the hub is closed.
   */
  get reliable(): boolean {
    return this.bus.healthy && !this.closed;
  }

  /** Tells these users' waiting long-polls and open streams that their sessions changed. */
  private sessionsChanged(userIds: number[]): void {
    for (const userId of userIds) for (const subscriber of this.subscribersOf(userId)) subscriber.sessionsChanged?.();
  }

  /** Wakes this instance's subscribers of these users (no bus: for what only this instance knows). */
  wake(userIds: number[]): void {
    this.deliver({ userIds });
  }

  /** Waiting subscribers and open connections, for tests and metrics. */
  stats(): { users: number; subscribers: number; connections: number } {
    let subscribers = 0;
    for (const present of this.subscribers.values()) subscribers += present instanceof Set ? present.size : 1;
    let connections = 0;
    for (const count of this.connections.values()) connections += count;
    return { users: this.subscribers.size, subscribers, connections };
  }

  /** Ends every wait and stream (graceful shutdown) and detaches from the bus. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopFallbackPolling();
    for (const detach of this.detach) detach();
    const all = [...this.subscribers.keys()].flatMap((userId) => this.subscribersOf(userId));
    this.subscribers.clear();
    for (const subscriber of all) subscriber.shutdown();
  }

  private deliver(wakeup: Wakeup): void {
    for (const listener of this.wakeListeners) listener(wakeup);
    const userIds = 'all' in wakeup ? [...this.subscribers.keys()] : wakeup.userIds;
    for (const userId of userIds) for (const subscriber of this.subscribersOf(userId)) subscriber.wake();
  }

  private onBusHealth(healthy: boolean): void {
    if (healthy) {
      this.stopFallbackPolling();
      this.deliver({ all: true });
      // A logout or revocation during the outage was announced to no one: every connection asks.
      this.sessionsChanged([...this.subscribers.keys()]);
    } else {
      this.startFallbackPolling();
    }
  }

  private startFallbackPolling(): void {
    if (this.fallbackTimer || this.closed) return;
    this.fallbackTimer = setInterval(() => void this.pollDatabase(), this.options.fallbackPollMs);
    this.fallbackTimer.unref();
  }

  private stopFallbackPolling(): void {
    clearInterval(this.fallbackTimer);
    this.fallbackTimer = undefined;
  }

  private async pollDatabase(): Promise<void> {
    const waiting = [...this.subscribers.keys()];
    if (waiting.length === 0) return;
    try {
      const userIds = await this.findUsersWithUndelivered(waiting);
      this.deliver({ userIds });
    } catch (error) {
      this.options.logger.warn({ err: error }, 'fallback poll for undelivered notifications failed');
    }
  }
}

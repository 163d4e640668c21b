/**
 * What crosses instances when notifications are created: which users have new ones, never the
 * notifications themselves (each instance reads those from the database it shares).
 */
export type Wakeup = { userIds: number[] } | { all: true };

/** An administrator changed feature flags: every instance drops what it cached of them. */
export type FlagsChanged = { flagsChanged: true };

/** These users' sessions or details changed (a logout, new names): every instance drops what it cached of them. */
export type UsersChanged = { usersChanged: number[] };

export type BusMessage = Wakeup | FlagsChanged | UsersChanged;

export type BusListener = (message: BusMessage) => void;

export const isWakeup = (message: BusMessage): message is Wakeup => 'userIds' in message || 'all' in message;

/**
 * What the instances of one deployment tell each other. Every listener gets every message and
 * picks the kinds it cares for: there are few kinds and few listeners, and one channel keeps the
 * order in which they were published.
 */
export interface InstanceBus {
  publish(message: BusMessage): Promise<void>;
  subscribe(listener: BusListener): () => void;
  /** False while the bus may be missing messages (Redis down); listeners then poll the database. */
  readonly healthy: boolean;
  /** Called with the new health whenever it changes. */
  onHealthChange(listener: (healthy: boolean) => void): () => void;
  close(): Promise<void>;
}

/** Listeners with unsubscribe functions: the part every bus shares. */
export class Listeners<T> {
  private readonly listeners = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(value: T): void {
    for (const listener of this.listeners) listener(value);
  }

  get size(): number {
    return this.listeners.size;
  }
}

/** One process: publishing wakes this process's listeners, and nothing is ever missed. */
export class InMemoryBus implements InstanceBus {
  readonly healthy = true;
  private readonly listeners = new Listeners<BusMessage>();

  async publish(message: BusMessage): Promise<void> {
    this.listeners.emit(message);
  }

  subscribe(listener: BusListener): () => void {
    return this.listeners.add(listener);
  }

  onHealthChange(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}

/**
 * What crosses instances when notifications are created: which users have new ones, never the
 * notifications themselves (each instance reads those from the database it shares).
 */
export type Wakeup = { userIds: number[] } | { all: true };

export type WakeupListener = (wakeup: Wakeup) => void;

export interface NotificationBus {
  publish(wakeup: Wakeup): Promise<void>;
  subscribe(listener: WakeupListener): () => void;
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
export class InMemoryBus implements NotificationBus {
  readonly healthy = true;
  private readonly listeners = new Listeners<Wakeup>();

  async publish(wakeup: Wakeup): Promise<void> {
    this.listeners.emit(wakeup);
  }

  subscribe(listener: WakeupListener): () => void {
    return this.listeners.add(listener);
  }

  onHealthChange(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}

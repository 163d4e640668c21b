import { LRUCache } from 'lru-cache';
import { isWakeup, type InstanceBus } from '../realtime/bus';

export interface FlagCacheOptions {
  /** How long an entry may serve without a change being announced (SPEC.md: 5 minutes). */
  ttlMs?: number;
  /** How many entries (the flag list, and one per user who asked lately) are kept at most. */
  maxEntries?: number;
}

/**
 * What evaluating feature flags reads, kept in this process. SPEC.md's cache lived 5 minutes
 * whatever happened; this one is also dropped the moment an administrator changes anything, on
 * every instance: the change is announced on the instance bus. While the bus may be missing
 * messages (Redis down) nothing is served from it, and it starts empty when the bus is back.
 *
 * Entries hold the load's promise, stored when the load starts: concurrent misses share one query,
 * and a drop also discards loads still in flight, so nothing read before a change is kept after it.
 */
export class FlagCache {
  private readonly entries: LRUCache<string, Promise<unknown>>;

  constructor(
    private readonly bus: InstanceBus,
    { ttlMs = 5 * 60_000, maxEntries = 10_000 }: FlagCacheOptions = {},
  ) {
    this.entries = new LRUCache({ max: maxEntries, ttl: ttlMs });
    bus.subscribe((message) => isWakeup(message) || this.clear());
    bus.onHealthChange(() => this.clear());
  }

  /** The cached value of `key`, loaded once by `load` while the bus is healthy. */
  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.bus.healthy) return load();
    const cached = this.entries.get(key) as Promise<T> | undefined;
    if (cached) return cached;
    const loading = load();
    this.entries.set(key, loading);
    // A failed load is not kept: the next request tries again.
    loading.catch(() => this.entries.peek(key) === loading && this.entries.delete(key));
    return loading;
  }

  /** Drops this instance's entries and tells the other instances to drop theirs. */
  async changed(): Promise<void> {
    this.clear();
    await this.bus.publish({ flagsChanged: true });
  }

  private clear(): void {
    this.entries.clear();
  }
}

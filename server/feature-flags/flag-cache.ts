import type { InstanceBus } from '../realtime/bus';
import { SharedCache, type SharedCacheOptions } from '../realtime/shared-cache';

export type FlagCacheOptions = Partial<SharedCacheOptions>;

/**
 * What evaluating feature flags reads, kept in this process. SPEC.md's cache lived 5 minutes
 * whatever happened; this one is also dropped the moment an administrator changes anything, on
 * every instance: the change is announced on the instance bus (see SharedCache for what happens
 * while the bus is down).
 */
export class FlagCache {
  private readonly cache: SharedCache<unknown>;

  constructor(
    private readonly bus: InstanceBus,
    { ttlMs = 5 * 60_000, maxEntries = 10_000, clock }: FlagCacheOptions = {},
  ) {
    this.cache = new SharedCache(bus, { ttlMs, maxEntries, clock });
    bus.subscribe((message) => 'flagsChanged' in message && this.cache.clear());
  }

  /** The cached value of `key`, loaded once by `load`. */
  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.cache.get(key, load) as Promise<T>;
  }

  /** Drops this instance's entries and tells the other instances to drop theirs. */
  async changed(): Promise<void> {
    this.cache.clear();
    await this.bus.publish({ flagsChanged: true });
  }
}

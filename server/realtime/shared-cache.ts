import { LRUCache } from 'lru-cache';
import type { InstanceBus } from './bus';

export interface SharedCacheOptions {
  /** How long an entry may serve when no change was announced for it, from its load (a use does not extend it). */
  ttlMs: number;
  /** How many entries are kept at most (the least recently used go first). */
  maxEntries: number;
  /** What the lifetime is measured by (default: performance.now); tests pass a clock they move. */
  clock?: { now(): number };
}

interface Entry<V> {
  loading: Promise<V>;
  /** Set once the load has resolved. */
  value?: V;
}

/**
 * Values kept in this process, and dropped the moment any instance announces a change on the bus
 * (its owner listens and calls `clear` or `dropWhere`). While the bus may be missing messages (Redis
 * down) nothing is served from it, and it starts empty when the bus is back: a change announced in
 * between was never heard.
 *
 * An entry holds its load's promise, stored when the load starts: concurrent misses share one query,
 * and a drop also discards loads still in flight, so nothing read before a change is kept after it.
 */
export class SharedCache<V> {
  private readonly entries: LRUCache<string, Entry<V>>;

  constructor(
    private readonly bus: InstanceBus,
    { ttlMs, maxEntries, clock }: SharedCacheOptions,
  ) {
    this.entries = new LRUCache({ max: maxEntries, ttl: ttlMs, perf: clock });
    bus.onHealthChange(() => this.clear());
  }

  /**
   * The value of `key`, loaded once by `load` while the bus is healthy. A value `keep` refuses (a
   * token that does not exist, say) is answered but not kept.
   */
  get(key: string, load: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    if (!this.bus.healthy) return load();
    const cached = this.entries.get(key);
    if (cached) return cached.loading;
    const entry: Entry<V> = { loading: load() };
    this.entries.set(key, entry);
    entry.loading.then(
      (value) => {
        if (this.entries.peek(key) !== entry) return;
        if (keep(value)) entry.value = value;
        else this.entries.delete(key);
      },
      // A failed load is not kept: the next request tries again.
      () => this.entries.peek(key) === entry && this.entries.delete(key),
    );
    return entry.loading;
  }

  /** The value of `key` when it is loaded and may serve, without waiting; undefined otherwise. */
  peek(key: string): V | undefined {
    return this.bus.healthy ? this.entries.get(key)?.value : undefined;
  }

  clear(): void {
    this.entries.clear();
  }

  /** Drops the values `stale` picks, and every load still in flight (it may have read before the change). */
  dropWhere(stale: (value: V) => boolean): void {
    for (const [key, entry] of this.entries.entries()) {
      if (entry.value === undefined || stale(entry.value)) this.entries.delete(key);
    }
  }
}

import { InMemoryBus, type InstanceBus } from '../realtime/bus';
import { SharedCache, type SharedCacheOptions } from '../realtime/shared-cache';
import type { AuthUser } from './auth.service';

export type SessionCacheOptions = Partial<SharedCacheOptions>;

/**
 * Which user each token (by its digest) belongs to, kept in this process so that a request does not
 * wait for the database to know who sent it. Every change that could make an entry wrong (a logout,
 * new names) is announced on the instance bus and drops that user's entries on every instance at
 * once, so a logged-out token is refused on the very next request anywhere. The lifetime only
 * bounds changes made behind the API's back (by hand in the database). Unknown tokens are never
 * kept: guessing cannot fill the cache.
 */
export class SessionCache {
  private readonly cache: SharedCache<AuthUser | undefined>;

  constructor(
    private readonly bus: InstanceBus = new InMemoryBus(),
    { ttlMs = 60_000, maxEntries = 10_000 }: SessionCacheOptions = {},
  ) {
    this.cache = new SharedCache(bus, { ttlMs, maxEntries });
    bus.subscribe((message) => 'usersChanged' in message && this.drop(message.usersChanged));
  }

  /** The user the token with this digest belongs to, as `load` reads it; undefined for an unknown token. */
  userOf(digest: string, load: () => Promise<AuthUser | undefined>): Promise<AuthUser | undefined> {
    return this.cache.get(digest, load, (user) => user !== undefined);
  }

  /** The user of the token with this digest when this process knows it already, without waiting. */
  knownUser(digest: string): AuthUser | undefined {
    return this.cache.peek(digest);
  }

  /** Drops these users' entries here and tells the other instances to drop theirs. */
  async changed(userIds: number[]): Promise<void> {
    this.drop(userIds);
    await this.bus.publish({ usersChanged: userIds });
  }

  private drop(userIds: number[]): void {
    const ids = new Set(userIds);
    this.cache.dropWhere((user) => user !== undefined && ids.has(user.id));
  }
}

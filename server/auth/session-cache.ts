import { InMemoryBus, type InstanceBus } from '../realtime/bus';
import { SharedCache, type SharedCacheOptions } from '../realtime/shared-cache';
import type { AuthUser } from './auth.service';

export type SessionCacheOptions = Partial<SharedCacheOptions>;

/** A token's session as a request needs it: whose it is, which row, and when it was last used (ms). */
export interface Session {
  user: AuthUser;
  tokenId: number;
  lastUsedAt: number;
}

/**
 * As many sessions as an instance has clients, and more: the cache is an LRU, and a working set one
 * larger than it misses every time when it is walked in order — as the re-polls after a broadcast
 * walk it (with 10,000 entries, a broadcast to 10,001 users asked the database for every token).
 * An entry is a few hundred bytes.
 */
export const MAX_SESSIONS = 100_000;

/**
 * Which session each token (by its digest) belongs to, kept in this process so that a request does not
 * wait for the database to know who sent it. Every change that could make an entry wrong (a logout,
 * new names, a revoked session) is announced on the instance bus and drops that user's entries on
 * every instance at once, so a logged-out or revoked token is refused on the very next request
 * anywhere. The lifetime only
 * bounds changes made behind the API's back (by hand in the database). Unknown tokens are never
 * kept: guessing cannot fill the cache.
 */
export class SessionCache {
  private readonly cache: SharedCache<Session | undefined>;

  constructor(
    private readonly bus: InstanceBus = new InMemoryBus(),
    { ttlMs = 60_000, maxEntries = MAX_SESSIONS, clock }: SessionCacheOptions = {},
  ) {
    this.cache = new SharedCache(bus, { ttlMs, maxEntries, clock });
    bus.subscribe((message) => 'usersChanged' in message && this.drop(message.usersChanged));
  }

  /** The session of the token with this digest, as `load` reads it; undefined for an unknown token. */
  sessionOf(digest: string, load: () => Promise<Session | undefined>): Promise<Session | undefined> {
    return this.cache.get(digest, load, (session) => session !== undefined);
  }

  /** The session of the token with this digest when this process knows it already, without waiting. */
  knownSession(digest: string): Session | undefined {
    return this.cache.peek(digest);
  }

  /** Drops these users' entries here and tells the other instances to drop theirs. */
  async changed(userIds: number[]): Promise<void> {
    this.drop(userIds);
    await this.bus.publish({ usersChanged: userIds });
  }

  private drop(userIds: number[]): void {
    const ids = new Set(userIds);
    this.cache.dropWhere((session) => session !== undefined && ids.has(session.user.id));
  }
}

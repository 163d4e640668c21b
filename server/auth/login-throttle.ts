import type { Redis } from 'ioredis';
import type { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { addressKey } from '../limits/address-key';
import { createLimiter, retryAfterSeconds } from '../limits/create-limiter';
import { TooManyRequests } from '../errors';

export const LOGIN_LIMITS = {
  /** Failed logins for one username within the window before it is refused for the window. */
  perUsername: 10,
  /** Failed logins from one address within the window before it is refused for the window. */
  perAddress: 50,
  windowSeconds: 15 * 60,
} as const;

/**
 * Slows password guessing: only failed attempts count, so a client that logs in many distinct users
 * from one address (a test suite, a load test) is never limited. An attempt counts against its
 * username and its address from the moment it is allowed, and a success gives it back (and clears
 * its username): counted only once it had failed, concurrent guesses would all pass the check
 * before any counted (300 at once from one address all got an answer about the password).
 * An address is counted by its addressKey (IPv6 by its /64). With Redis the counts are shared by every instance (else each instance would allow the limit);
 * while Redis is unreachable each instance counts in memory.
 */
export class LoginThrottle {
  private readonly byUsername: RateLimiterAbstract;
  private readonly byAddress: RateLimiterAbstract;

  /** `windowSeconds` is LOGIN_LIMITS' 15 minutes but for tests, which cannot wait that long for it to pass. */
  constructor(
    private readonly enabled: boolean,
    redis?: Redis,
    windowSeconds: number = LOGIN_LIMITS.windowSeconds,
  ) {
    this.byUsername = createLimiter({ name: 'login-failures:username', points: LOGIN_LIMITS.perUsername, windowSeconds, redis });
    this.byAddress = createLimiter({ name: 'login-failures:address', points: LOGIN_LIMITS.perAddress, windowSeconds, redis });
  }

  /** Counts the attempt, or refuses it (uncounted) when its username or address is out of attempts. */
  async assertAllowed(username: string, clientAddress: string): Promise<void> {
    if (!this.enabled) return;
    const address = addressKey(clientAddress);
    // The counts include this attempt (see the class comment), hence the `+ 1`s.
    const [user, ip] = await Promise.all([this.byUsername.penalty(username, 1), this.byAddress.penalty(address, 1)]);
    const blocked = [
      exhausted(user, LOGIN_LIMITS.perUsername + 1),
      exhausted(ip, LOGIN_LIMITS.perAddress + 1),
    ].filter((state): state is RateLimiterRes => state !== null);
    if (blocked.length === 0) return;
    // A refused attempt is not counted.
    await this.giveBack(username, clientAddress);
    throw new TooManyRequests(retryAfterSeconds(...blocked), 'Too many failed login attempts. Try again later.');
  }

  /** The attempt got no answer about the password (the database failed, say): it is given back, uncounted. */
  async giveBack(username: string, clientAddress: string): Promise<void> {
    if (!this.enabled) return;
    await Promise.all([this.byUsername.reward(username, 1), this.byAddress.reward(addressKey(clientAddress), 1)]);
  }

  /** The attempt succeeded: it is given back to its address, and its username's failures are forgotten. */
  async recordSuccess(username: string, clientAddress: string): Promise<void> {
    if (!this.enabled) return;
    await Promise.all([this.byUsername.delete(username), this.byAddress.reward(addressKey(clientAddress), 1)]);
  }
}

function exhausted(state: RateLimiterRes | null, points: number): RateLimiterRes | null {
  return state && state.consumedPoints >= points ? state : null;
}

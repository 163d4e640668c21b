import type { Redis } from 'ioredis';
import type { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
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
 * from one address (a test suite, a load test) is never limited. A success clears its username.
 * An attempt counts against its username from the moment it is allowed (a success then clears it):
 * counted only once it had failed, concurrent guesses would all pass the check before any counted.
 * With Redis the counts are shared by every instance (else each instance would allow the limit);
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

  async assertAllowed(username: string, address: string): Promise<void> {
    if (!this.enabled) return;
    // The username's count includes this attempt (see the class comment), hence the `+ 1`.
    const [user, ip] = await Promise.all([this.byUsername.penalty(username, 1), this.byAddress.get(address)]);
    const blocked = [
      exhausted(user, LOGIN_LIMITS.perUsername + 1),
      exhausted(ip, LOGIN_LIMITS.perAddress),
    ].filter((state): state is RateLimiterRes => state !== null);
    if (blocked.length === 0) return;
    await this.byUsername.reward(username, 1); // a refused attempt is not counted
    throw new TooManyRequests(retryAfterSeconds(...blocked), 'Too many failed login attempts. Try again later.');
  }

  async recordFailure(username: string, address: string): Promise<void> {
    if (!this.enabled) return;
    // The username's count already holds this attempt: assertAllowed added it.
    await this.byAddress.penalty(address, 1);
  }

  async recordSuccess(username: string): Promise<void> {
    if (!this.enabled) return;
    await this.byUsername.delete(username);
  }
}

function exhausted(state: RateLimiterRes | null, points: number): RateLimiterRes | null {
  return state && state.consumedPoints >= points ? state : null;
}

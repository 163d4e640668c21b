import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
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

  constructor(
    private readonly enabled: boolean,
    redis?: Redis,
  ) {
    this.byUsername = limiter('username', LOGIN_LIMITS.perUsername, redis);
    this.byAddress = limiter('address', LOGIN_LIMITS.perAddress, redis);
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
    const waitMs = Math.max(...blocked.map((state) => state.msBeforeNext));
    throw new TooManyRequests(Math.ceil(waitMs / 1000), 'Too many failed login attempts. Try again later.');
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

function limiter(name: string, points: number, redis: Redis | undefined): RateLimiterAbstract {
  const options = { points, duration: LOGIN_LIMITS.windowSeconds };
  if (!redis) return new RateLimiterMemory(options);
  return new RateLimiterRedis({
    ...options,
    storeClient: redis,
    keyPrefix: `punchclock:login-failures:${name}`,
    insuranceLimiter: new RateLimiterMemory(options),
  });
}

function exhausted(state: RateLimiterRes | null, points: number): RateLimiterRes | null {
  return state && state.consumedPoints >= points ? state : null;
}

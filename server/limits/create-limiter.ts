import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';

export interface LimiterOptions {
  /** Names the counters in Redis. */
  name: string;
  points: number;
  windowSeconds: number;
  /** Counts shared by every instance when given; while it is unreachable each process counts alone. */
  redis?: Redis;
}

export function createLimiter({ name, points, windowSeconds, redis }: LimiterOptions): RateLimiterAbstract {
  const options = { points, duration: windowSeconds };
  if (!redis) return new RateLimiterMemory(options);
  return new RateLimiterRedis({
    ...options,
    storeClient: redis,
    keyPrefix: `punchclock:${name}`,
    insuranceLimiter: new RateLimiterMemory(options),
  });
}

/** The whole seconds a refused client should wait (Retry-After): the longest of the states, at least 1. */
export function retryAfterSeconds(...states: RateLimiterRes[]): number {
  return Math.max(1, Math.ceil(Math.max(...states.map((state) => state.msBeforeNext)) / 1000));
}

import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequests } from '../errors';

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

/** Takes one point of `key`'s, or refuses with TooManyRequests (its Retry-After) when none is left. */
export async function consumeOrRefuse(limiter: RateLimiterAbstract, key: string, message: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (refusal) {
    if (!(refusal instanceof RateLimiterRes)) throw refusal;
    throw new TooManyRequests(retryAfterSeconds(refusal), message);
  }
}

import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { connectRedis, type RedisTarget } from '../realtime/redis-target';

/**
 * The Redis connection for the counters every instance shares (login failures, writes). Commands
 * fail fast — at once while disconnected, after 300 ms when Redis does not answer — so that the
 * limiters fall back to counting in memory rather than holding requests up (every write passes one).
 */
export function sharedRedis(target: RedisTarget, logger: Logger): Redis {
  const redis = connectRedis(target, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 300 });
  redis.on('error', (error) => logger.debug({ err: error }, 'shared-state redis error'));
  return redis;
}

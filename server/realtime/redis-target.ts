import { Redis, type RedisOptions } from 'ioredis';

/**
 * Where Redis is: one server (`REDIS_URL`), or a master that Redis Sentinel watches and fails over
 * (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`). With Sentinel, ioredis asks the sentinels for the
 * current master on every (re)connection and follows a failover by itself.
 */
export type RedisTarget = string | { sentinels: Array<{ host: string; port: number }>; name: string };

/** A connection to the target, with the caller's timeouts and retry policy. */
export function connectRedis(target: RedisTarget, options: RedisOptions): Redis {
  if (typeof target === 'string') return new Redis(target, options);
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    // Hear the sentinels' +switch-master at once instead of finding the old master gone.
    failoverDetector: true,
  });
}

/** What the logs say the target is (never a password from a URL). */
export function describeRedisTarget(target: RedisTarget): string {
  if (typeof target !== 'string') return `sentinel ${target.name} via ${target.sentinels.map(({ host, port }) => `${host}:${port}`).join(',')}`;
  const url = new URL(target);
  return `${url.protocol}//${url.host}`;
}

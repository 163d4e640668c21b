import type { NextFunction } from 'express';
import type { Redis } from 'ioredis';
import { consumeOrRefuse, createLimiter } from '../limits/create-limiter';

export interface WriteLimit {
  /** Writes (POST, PUT, PATCH, DELETE) one user may make within the window. */
  perUser: number;
  windowSeconds: number;
}

export const WRITE_LIMIT: WriteLimit = { perUser: 300, windowSeconds: 60 };

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether a request of this method counts against the write limit. */
export const countsAsWrite = (method: string) => !READS.has(method.toUpperCase());

/**
 * Middleware after `authenticate`: refuses an authenticated user's writes beyond the limit with 429
 * and Retry-After, so one runaway client cannot flood the database. Reads and the public routes
 * (register, login: login failures have their own throttle) are not counted.
 */
export function writeLimit(limit: WriteLimit, redis?: Redis) {
  const limiter = createLimiter({ name: 'writes', points: limit.perUser, windowSeconds: limit.windowSeconds, redis });
  return (req: { method: string; auth?: { user: { id: number } } }, _res: unknown, next: NextFunction) => {
    if (!countsAsWrite(req.method) || !req.auth) return next();
    consumeOrRefuse(limiter, String(req.auth.user.id), `Too many write requests: at most ${limit.perUser} per ${limit.windowSeconds} s.`).then(
      () => next(),
      next,
    );
  };
}

import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import type { RouteAccess } from './common';

const c = initContract();

export const HealthReport = z.object({
  status: z
    .enum(['ok', 'degraded', 'unavailable'])
    .describe('`unavailable` (503): this instance cannot serve (its database does not answer); `degraded`: it serves, see `realtime`.'),
  database: z.enum(['ok', 'unreachable']),
  realtime: z
    .enum(['ok', 'degraded'])
    .describe(
      '`degraded`: the Redis bus is down; this instance still delivers to its own clients, finding new ' +
        'notifications by polling the database every few seconds instead of at once.',
    ),
});

export const healthContract = c.router({
  check: {
    method: 'GET',
    path: '/health/',
    summary: 'Whether this instance can serve (for load balancers and orchestrators)',
    description: 'No token needed. 200 while the database answers, 503 when it does not.',
    metadata: { public: true } as const satisfies RouteAccess,
    responses: { 200: HealthReport, 503: HealthReport },
  },
  live: {
    method: 'GET',
    path: '/health/live',
    summary: 'Whether the process runs (liveness, for orchestrators)',
    description:
      'No token needed. 200 as long as the process answers HTTP, whatever its database and Redis do: an outage of ' +
      'those must not get healthy processes restarted. `/health/` is the readiness check.',
    metadata: { public: true } as const satisfies RouteAccess,
    responses: { 200: z.object({ status: z.literal('alive') }) },
  },
});

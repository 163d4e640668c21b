import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import type { HealthService } from './health.service';

const s = initServer();

export const healthRouter = (health: HealthService) =>
  s.router(contract.health, {
    check: async () => {
      const { databaseAnswers, busHealthy } = await health.check();
      const body = {
        status: !databaseAnswers ? 'unavailable' : busHealthy ? 'ok' : 'degraded',
        database: databaseAnswers ? 'ok' : 'unreachable',
        realtime: busHealthy ? 'ok' : 'degraded',
      } as const;
      return databaseAnswers ? { status: 200, body } : { status: 503, body };
    },
    // Nothing to look at: answering is the proof.
    live: async () => ({ status: 200, body: { status: 'alive' } }),
  });

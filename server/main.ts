// The server process: reads config, opens the database, listens, shuts down gracefully.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { openDatabase } from '../db/open-database';
import { createApp, createServices } from './app';
import { loadConfig } from './config';
import { answerClientErrorsAsJson } from './http/client-errors';
import { holdIdleConnectionsForLoadBalancers } from './http/server-timeouts';
import { startMetricsServer } from './metrics/metrics-http';
import { fillUsernameKeys } from './auth/username-backfill';
import { sharedRedis } from './limits/shared-redis';
import { createLogger } from './logger';
import { InMemoryBus, type InstanceBus } from './realtime/bus';
import { RedisBus } from './realtime/redis-bus';
import { describeRedisTarget } from './realtime/redis-target';

const config = loadConfig();
const logger = createLogger(config.logLevel);
const store = await openDatabase(config.databaseUrl);
const bus: InstanceBus = config.redis ? await RedisBus.connect(config.redis, logger) : new InMemoryBus();
const redis = config.redis ? sharedRedis(config.redis, logger) : undefined;
// Answers are checked against the contract by the tests, not on every request here (app.ts, checkAnswers).
const deps = {
  store,
  logger,
  bus,
  redis,
  rateLimits: config.rateLimits,
  corsOrigins: config.corsOrigins,
  trustProxy: config.trustProxy,
  ownershipCaps: config.ownershipCaps,
  metricsToken: config.metricsToken,
  metricsServed: config.metricsPort !== undefined || config.metricsToken !== undefined,
  tokenTtlMs: config.tokenTtlDays === undefined ? undefined : config.tokenTtlDays * 24 * 60 * 60_000,
  checkAnswers: false,
};
const services = createServices(deps);

for (const clash of await fillUsernameKeys(store)) {
  logger.warn(clash, 'username clashes with an older one (rename one of the two): it logs in only by its exact spelling');
}

if (config.adminUsername && config.adminPassword) {
  const created = await services.auth.ensureUser({
    username: config.adminUsername,
    password: config.adminPassword,
    isAdmin: true,
  });
  if (created) logger.info({ username: config.adminUsername }, 'admin account created');
}

const server = createApp(deps, services).listen(config.port, config.host);
answerClientErrorsAsJson(server);
holdIdleConnectionsForLoadBalancers(server);
const metricsServer = config.metricsPort === undefined ? undefined : startMetricsServer(services.metrics, config.metricsPort, config.host);
services.longTimers.job.start();
services.idempotency.purging.start();
services.sessions.purging.start();
await once(server, 'listening');
const { port } = server.address() as AddressInfo;
if (metricsServer && !metricsServer.listening) await once(metricsServer, 'listening');
const metricsUrl = metricsServer && `http://${config.host}:${(metricsServer.address() as AddressInfo).port}/metrics`;
logger.info(
  { url: `http://${config.host}:${port}`, database: store.dialect, bus: config.redis ? `redis (${describeRedisTarget(config.redis)})` : 'in-memory', metrics: metricsUrl ?? (config.metricsToken ? 'token' : 'off') },
  'punchclock listening',
);

/** Connections still open this long after a shutdown began are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

async function shutdown(signal: string) {
  logger.info({ signal }, 'shutting down');
  server.close();
  metricsServer?.close();
  services.longTimers.job.stop();
  services.idempotency.purging.stop();
  services.sessions.purging.stop();
  // Waiting long-polls answer "timeout" and streams end, so that their connections can close.
  services.hub.close();
  // Keep-alive connections turn idle as their last answers go out: close them as they do.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  await once(server, 'close');
  clearInterval(sweep);
  await bus.close();
  redis?.disconnect();
  await store.close();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

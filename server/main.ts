// The server process: reads config, opens the database, listens, shuts down gracefully.
import { once } from 'node:events';
import { openDatabase } from '../db/open-database';
import { createApp, createServices } from './app';
import { loadConfig } from './config';
import { createLogger } from './logger';

const config = loadConfig();
const logger = createLogger(config.logLevel);
const store = await openDatabase(config.databaseUrl);
const deps = { store, logger, rateLimits: config.rateLimits, corsOrigins: config.corsOrigins };
const services = createServices(deps);

if (config.adminUsername && config.adminPassword) {
  const created = await services.auth.ensureUser({
    username: config.adminUsername,
    password: config.adminPassword,
    isAdmin: true,
  });
  if (created) logger.info({ username: config.adminUsername }, 'admin account created');
}

const server = createApp(deps, services).listen(config.port, config.host);
await once(server, 'listening');
logger.info({ url: `http://${config.host}:${config.port}`, database: store.dialect }, 'punchclock listening');

async function shutdown(signal: string) {
  logger.info({ signal }, 'shutting down');
  server.close();
  server.closeIdleConnections();
  await once(server, 'close');
  await store.close();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

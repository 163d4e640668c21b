// The server process of the notifications benchmark, forked by bench/notifications.ts so that the
// clients' memory stays out of this process's RSS. Configured by environment:
//   BENCH_MODE    real (default) | naive — naive mounts bench/support/naive-long-poll.ts in front
//   DATABASE_URL  as for the server (the orchestrator passes a temp SQLite file or a fresh Postgres db)
//   REDIS_URL     optional: the Redis bus instead of the in-memory one
//   LOG_LEVEL     pino level, 'error' unless given
// Answers the IPC requests of ./protocol.ts; exits when the orchestrator goes away.
import { createServer } from 'node:http';
import { like, sql, type SQL } from 'drizzle-orm';
import express, { type Express } from 'express';
import { pino } from 'pino';
import { openDatabase, type Store } from '../../db/open-database';
import { createApp, createServices, type AppDependencies, type Services } from '../../server/app';
import { hashPassword } from '../../server/auth/passwords';
import { newToken } from '../../server/auth/tokens';
import { errorHandler } from '../../server/http/error-handler';
import { useRequestLogging } from '../../server/http/request-logging';
import { InMemoryBus, type InstanceBus } from '../../server/realtime/bus';
import { RedisBus } from '../../server/realtime/redis-bus';
import { naiveLongPoll, type NaiveLongPoll } from './naive-long-poll';
import type { BenchMode, SeedResult } from './protocol';
import { listen, requireOrchestrator, serveOrchestrator } from './served-process';

requireOrchestrator('bench-server.ts');

const mode: BenchMode = process.env.BENCH_MODE === 'naive' ? 'naive' : 'real';
const logger = pino({ level: process.env.LOG_LEVEL || 'error' });

let queries = 0;
const store: Store = await openDatabase(process.env.DATABASE_URL, { onQuery: () => void queries++ });
const SYNCHRONOUS = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];
const sqliteSynchronousInEffect =
  store.dialect === 'sqlite'
    ? SYNCHRONOUS[(store.db as unknown as { get(query: SQL): { synchronous: number } }).get(sql.raw('PRAGMA synchronous')).synchronous] ?? null
    : null;
// Only what the services run from here on counts.
queries = 0;
const bus: InstanceBus = process.env.REDIS_URL ? await RedisBus.connect(process.env.REDIS_URL, logger) : new InMemoryBus();
const deps: AppDependencies = { store, logger, rateLimits: false, checkAnswers: false, bus, realtime: { maxConnectionsPerUser: 6 } };
const services: Services = createServices(deps);
const realApp = createApp(deps, services);

let naive: NaiveLongPoll | undefined;
let app: Express = realApp;
if (mode === 'naive') {
  // The naive route answers GET /api/notifications/long-poll/ before the real app sees it; every
  // other request falls through to the real app unchanged.
  naive = naiveLongPoll(services, store);
  app = express();
  app.disable('x-powered-by');
  useRequestLogging(app, logger);
  app.use(naive.router);
  app.use(realApp);
  app.use(errorHandler);
}

async function seed(users: number, admin: boolean): Promise<SeedResult> {
  const started = performance.now();
  const { db, t } = store;
  // One scrypt hash for everybody: these users never log in, and 10,000 hashes would take minutes.
  const passwordHash = await hashPassword('bench password that nobody types');
  const prefix = `bench${Date.now().toString(36)}`;
  const createdAt = new Date();
  const names = Array.from({ length: users }, (_, i) => `${prefix}_${i}`);
  const adminName = `${prefix}_admin`;
  await store.insertAll(t.users, [
    ...names.map((username, i) => ({
      username,
      passwordHash,
      firstName: 'Bench',
      lastName: String(i),
      isAdmin: false,
      createdAt,
    })),
    ...(admin ? [{ username: adminName, passwordHash, firstName: 'Bench', lastName: 'Admin', isAdmin: true, createdAt }] : []),
  ]);
  const rows = await db
    .select({ id: t.users.id, username: t.users.username })
    .from(t.users)
    .where(like(t.users.username, `${prefix}%`));
  const idByName = new Map(rows.map((row) => [row.username, row.id]));
  const userIds = names.map((name) => {
    const id = idByName.get(name);
    if (id === undefined) throw new Error(`seeded user ${name} not found`);
    return id;
  });
  const tokens: string[] = [];
  const tokenRows = userIds.map((userId) => {
    const { token, digest } = newToken();
    tokens.push(token);
    return { userId, digest, createdAt };
  });
  let adminToken: string | null = null;
  if (admin) {
    const { token, digest } = newToken();
    adminToken = token;
    tokenRows.push({ userId: idByName.get(adminName)!, digest, createdAt });
  }
  await store.insertAll(t.authTokens, tokenRows);
  return { userIds, tokens, adminToken, ms: performance.now() - started };
}

const server = createServer(app);
const port = await listen(server);

serveOrchestrator(
  {
    server,
    seed,
    stats: () => ({ queries, hub: services.hub.stats(), naiveWaiting: naive?.waiting() ?? 0, busHealthy: bus.healthy }),
    close: async () => {
      services.hub.close();
      await bus.close();
      await store.close();
    },
  },
  {
    port,
    mode,
    dialect: store.dialect,
    bus: process.env.REDIS_URL ? 'redis' : 'in-memory',
    sqliteSynchronous: sqliteSynchronousInEffect,
  },
);

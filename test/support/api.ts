import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import type { Dialect } from '../../db/open-database';
import { createApp, createServices, type RealtimeOptions, type Services } from '../../server/app';
import type { TrustProxy } from '../../server/config';
import type { RegistrationLimitSettings } from '../../server/auth/registration-limit';
import type { SessionCacheOptions } from '../../server/auth/session-cache';
import type { FlagCacheOptions } from '../../server/feature-flags/flag-cache';
import { answerClientErrorsAsJson } from '../../server/http/client-errors';
import type { WriteLimit } from '../../server/http/write-limit';
import type { OwnershipCaps } from '../../server/limits/ownership-caps';
import type { InstanceBus } from '../../server/realtime/bus';
import { createTestDatabase, dialects, type TestDatabase } from './databases';

export interface TestUser {
  id: number;
  username: string;
  password: string;
  token: string;
  /** `{ Authorization: 'Token …' }`, for supertest's `.set()`. */
  auth: { Authorization: string };
}

export interface ApiContext {
  database: TestDatabase;
  services: Services;
  http: supertest.Agent;
  /** Registers and logs in a new user with a unique name. */
  createUser(options?: { admin?: boolean; firstName?: string }): Promise<TestUser>;
  /** How many database queries the services have run so far (sample before and after). */
  queryCount(): number;
  /** The SQL of the queries run since the count was `since` (a queryCount() sampled before). */
  queriesSince(since: number): string[];
  /** Serves the app on a real port (for fetch-based clients and streams); closed after the suite. */
  listen(): Promise<string>;
  /** Makes the next `times` statements whose SQL starts with `prefix` fail, as a database that refuses them would. */
  failQueries(prefix: string, times?: number): void;
}

export interface ApiOptions {
  rateLimits?: boolean;
  realtime?: Partial<RealtimeOptions>;
  bus?: () => Promise<InstanceBus> | InstanceBus;
  writeLimit?: WriteLimit;
  flagCache?: FlagCacheOptions;
  sessionCache?: SessionCacheOptions;
  tokenTtlMs?: number;
  trustProxy?: TrustProxy;
  registrationLimit?: RegistrationLimitSettings;
  ownershipCaps?: OwnershipCaps;
  requestDeadlineMs?: number;
  metricsToken?: string;
  /** The dialects to run on, of those configured (default: all of them). */
  dialects?: Dialect[];
}

export const STRONG_PASSWORD = 'correct horse battery staple';

export const uniqueName = (prefix = 'user') => `${prefix}_${randomBytes(5).toString('hex')}`;

/**
 * Runs a suite once per dialect (SQLite always, Postgres when configured), against a fresh database
 * and a real app driven through supertest. The context is filled in beforeAll.
 */
export function describeApi(title: string, suite: (ctx: ApiContext) => void, options: ApiOptions = {}) {
  const chosen = dialects.filter((dialect) => options.dialects?.includes(dialect) ?? true);
  describe.each(chosen)(`${title} [%s]`, (dialect) => {
    const ctx = {} as ApiContext;
    const queries: string[] = [];
    let refused = { prefix: '', left: 0 };
    const onQuery = (sql: string) => {
      queries.push(sql);
      if (refused.left > 0 && sql.startsWith(refused.prefix)) {
        refused.left--;
        throw new Error('the database refused the statement (ctx.failQueries)');
      }
    };
    let server: Server | undefined;
    let bus: InstanceBus | undefined;
    beforeAll(async () => {
      ctx.database = await createTestDatabase(dialect, { onQuery });
      bus = await options.bus?.();
      const deps = {
        store: ctx.database.store,
        logger: pino({ level: 'silent' }),
        rateLimits: options.rateLimits ?? true,
        realtime: options.realtime,
        writeLimit: options.writeLimit,
        flagCache: options.flagCache,
        sessionCache: options.sessionCache,
        tokenTtlMs: options.tokenTtlMs,
        trustProxy: options.trustProxy,
        registrationLimit: options.registrationLimit,
        ownershipCaps: options.ownershipCaps,
        requestDeadlineMs: options.requestDeadlineMs,
        metricsToken: options.metricsToken,
        bus,
      };
      ctx.services = createServices(deps);
      const app = createApp(deps, ctx.services);
      ctx.http = supertest.agent(app);
      ctx.createUser = (userOptions) => createUser(ctx, userOptions);
      ctx.queryCount = () => queries.length;
      ctx.queriesSince = (since) => queries.slice(since);
      ctx.failQueries = (prefix, times = 1) => void (refused = { prefix, left: times });
      ctx.listen = async () => {
        if (!server) {
          server = app.listen(0, '127.0.0.1');
          answerClientErrorsAsJson(server);
        }
        if (!server.listening) await new Promise((resolve) => server!.once('listening', resolve));
        return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      };
    });
    // A test that failed before its refused statement came must not leave it to the next test.
    afterEach(() => void (refused = { prefix: '', left: 0 }));
    afterAll(async () => {
      ctx.services?.hub.close();
      if (server) {
        server.closeAllConnections();
        await new Promise((resolve) => server!.close(resolve));
      }
      await bus?.close();
      await ctx.database?.drop();
    });
    suite(ctx);
  });
}

/** The same user signed in once more: a session, and its token, of their own (as a second device's). */
export async function anotherSession(ctx: Pick<ApiContext, 'services'>, user: TestUser): Promise<TestUser> {
  const token = await ctx.services.sessions.open(user.id);
  return { ...user, token, auth: { Authorization: `Token ${token}` } };
}

export async function createUser(ctx: Pick<ApiContext, 'services' | 'http'>, options: { admin?: boolean; firstName?: string } = {}): Promise<TestUser> {
  const username = uniqueName();
  const user = await ctx.services.auth.register({
    username,
    password: STRONG_PASSWORD,
    firstName: options.firstName,
    isAdmin: options.admin,
  });
  // The token a login would hand out, without a second password hash (the auth tests log in over HTTP).
  const token = await ctx.services.sessions.open(user.id);
  return { id: user.id, username, password: STRONG_PASSWORD, token, auth: { Authorization: `Token ${token}` } };
}

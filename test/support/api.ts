import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe } from 'vitest';
import { createApp, createServices, type Services } from '../../server/app';
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
}

export const STRONG_PASSWORD = 'correct horse battery staple';

export const uniqueName = (prefix = 'user') => `${prefix}_${randomBytes(5).toString('hex')}`;

/**
 * Runs a suite once per dialect (SQLite always, Postgres when configured), against a fresh database
 * and a real app driven through supertest. The context is filled in beforeAll.
 */
export function describeApi(title: string, suite: (ctx: ApiContext) => void, options: { rateLimits?: boolean } = {}) {
  describe.each(dialects)(`${title} [%s]`, (dialect) => {
    const ctx = {} as ApiContext;
    beforeAll(async () => {
      ctx.database = await createTestDatabase(dialect);
      const deps = { store: ctx.database.store, logger: pino({ level: 'silent' }), rateLimits: options.rateLimits ?? true };
      ctx.services = createServices(deps);
      ctx.http = supertest.agent(createApp(deps, ctx.services));
      ctx.createUser = (userOptions) => createUser(ctx, userOptions);
    });
    afterAll(async () => {
      await ctx.database?.drop();
    });
    suite(ctx);
  });
}

async function createUser(ctx: ApiContext, options: { admin?: boolean; firstName?: string } = {}): Promise<TestUser> {
  const username = uniqueName();
  const user = await ctx.services.auth.register({
    username,
    password: STRONG_PASSWORD,
    firstName: options.firstName,
    isAdmin: options.admin,
  });
  const login = await ctx.http.post('/auth/token/login/').send({ username, password: STRONG_PASSWORD }).expect(200);
  const token: string = login.body.auth_token;
  return { id: user.id, username, password: STRONG_PASSWORD, token, auth: { Authorization: `Token ${token}` } };
}

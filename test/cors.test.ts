// CORS_ORIGINS as server/main.ts applies it: loadConfig parses the environment, the app gets
// config.corsOrigins. README: "comma-separated origins allowed to call the API from a browser",
// unset: no CORS. server-wiring.test.ts checks the same through the real process.
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, createServices, type Services } from '../server/app';
import { loadConfig } from '../server/config';
import { STRONG_PASSWORD, uniqueName } from './support/api';
import { insertCheapUsers } from './support/cheap-users';
import { createTestDatabase, dialects, type TestDatabase } from './support/databases';

const APP = 'https://app.example.com';
const ADMIN = 'https://admin.example.com';
/** As an operator might write it: spaces after the commas, a trailing comma. */
const CORS_ORIGINS = `${APP}, ${ADMIN} ,`;

const corsHeaders = (headers: Record<string, string>) => Object.keys(headers).filter((name) => name.startsWith('access-control-'));
const exposed = (headers: Record<string, string>) =>
  (headers['access-control-expose-headers'] ?? '').split(',').map((name) => name.trim().toLowerCase());

describe('CORS_ORIGINS parsing', () => {
  it('reads comma-separated origins, trimmed, empty entries dropped; unset or empty means none', () => {
    expect(loadConfig({ CORS_ORIGINS }).corsOrigins).toEqual([APP, ADMIN]);
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: '' }).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: ' , ' }).corsOrigins).toEqual([]);
  });
});

describe.each(dialects)('CORS [%s]', (dialect) => {
  let database: TestDatabase;
  const built: Services[] = [];

  /** The app as main.ts builds it from this environment. */
  function appFor(env: NodeJS.ProcessEnv): supertest.Agent {
    const config = loadConfig(env);
    const deps = { store: database.store, logger: pino({ level: 'silent' }), rateLimits: config.rateLimits, corsOrigins: config.corsOrigins };
    const services = createServices(deps);
    built.push(services);
    return supertest.agent(createApp(deps, services));
  }

  async function newUser(http: supertest.Agent) {
    const username = uniqueName();
    await insertCheapUsers(database.store, [username]);
    const login = await http.post('/auth/token/login/').send({ username, password: STRONG_PASSWORD }).expect(200);
    return { username, auth: { Authorization: `Token ${login.body.auth_token}` } };
  }

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });

  afterAll(async () => {
    for (const services of built) services.hub.close();
    await database?.drop();
  });

  describe('with CORS_ORIGINS', () => {
    let http: supertest.Agent;
    beforeAll(() => {
      http = appFor({ CORS_ORIGINS });
    });

    const preflight = (origin: string, method = 'POST') =>
      http
        .options('/api/tags/')
        .set('Origin', origin)
        .set('Access-Control-Request-Method', method)
        .set('Access-Control-Request-Headers', 'authorization,content-type,idempotency-key');

    it('answers a preflight from each allowed origin with what a browser needs to send the request', async () => {
      for (const origin of [APP, ADMIN]) {
        const res = await preflight(origin, 'DELETE');
        expect(res.status, origin).toBe(204);
        expect(res.headers['access-control-allow-origin'], origin).toBe(origin);
        expect(res.headers.vary).toMatch(/\bOrigin\b/);
        const methods = res.headers['access-control-allow-methods'].split(',');
        for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) expect(methods, origin).toContain(method);
        const allowedHeaders = res.headers['access-control-allow-headers'].toLowerCase().split(',');
        for (const header of ['authorization', 'content-type', 'idempotency-key']) expect(allowedHeaders, origin).toContain(header);
      }
    });

    it('lets an allowed origin read the answer and the X-Request-Id, Link, Retry-After and ETag headers', async () => {
      const user = await newUser(http);
      await Promise.all(
        ['one', 'two'].map((message) => http.post('/api/notifications/test/').set(user.auth).send({ message, type: 'INFO' }).expect(201)),
      );
      // A page with a next page: its Link header is there, and exposed to the page's script.
      const page = await http.get('/api/notifications/?limit=1').set(user.auth).set('Origin', APP).expect(200);
      expect(page.headers['access-control-allow-origin']).toBe(APP);
      expect(page.headers.link).toEqual(expect.any(String));
      expect(page.headers['x-request-id']).toEqual(expect.any(String));
      expect(exposed(page.headers)).toEqual(expect.arrayContaining(['x-request-id', 'link', 'retry-after', 'etag']));

      // Errors too: a refused login's 429 tells the script, through Retry-After, when to try again.
      const { username: victim } = await newUser(http);
      for (let attempt = 1; attempt <= 10; attempt++) {
        await http.post('/auth/token/login/').set('Origin', ADMIN).send({ username: victim, password: `wrong ${attempt}` }).expect(400);
      }
      const refused = await http.post('/auth/token/login/').set('Origin', ADMIN).send({ username: victim, password: 'again' }).expect(429);
      expect(refused.headers['access-control-allow-origin']).toBe(ADMIN);
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(exposed(refused.headers)).toContain('retry-after');
    });

    it('gives no other origin leave to read anything, however close its name', async () => {
      const user = await newUser(http);
      const others = [
        'https://evil.example.com',
        'http://app.example.com', // another scheme
        'https://app.example.com:8443', // another port
        'https://app.example.com.evil.example', // a suffix
        'https://xapp.example.com', // a prefix
        'null',
      ];
      for (const origin of others) {
        const pre = await preflight(origin);
        // Not a word of CORS: the OPTIONS is answered as any OPTIONS (204 with Allow, after the token check).
        expect(corsHeaders(pre.headers), origin).toEqual([]);
        const res = await http.get('/api/tags/').set(user.auth).set('Origin', origin).expect(200);
        expect(res.headers['access-control-allow-origin'], origin).toBeUndefined();
      }
    });
  });

  describe('with CORS_ORIGINS, requests that are not preflights of an allowed origin', () => {
    let http: supertest.Agent;
    beforeAll(() => {
      http = appFor({ CORS_ORIGINS });
    });

    it('answers a plain OPTIONS with 204 and Allow, and an unknown path with 404, as without CORS', async () => {
      const options = await http.options('/health/').expect(204);
      expect(options.headers.allow).toBe('GET, OPTIONS');
      expect(corsHeaders(options.headers)).toEqual([]);
      await http.options('/no/such/path/').expect(404);
      await http.options('/no/such/path/').set('Origin', 'https://evil.example.com').set('Access-Control-Request-Method', 'GET').expect(404);
    });
  });

  describe('without CORS_ORIGINS', () => {
    let http: supertest.Agent;
    beforeAll(() => {
      http = appFor({});
    });

    it('sends no CORS header, to a preflight or a request, whatever the origin', async () => {
      const user = await newUser(http);
      for (const origin of [APP, 'https://evil.example.com']) {
        const pre = await http
          .options('/api/tags/')
          .set('Origin', origin)
          .set('Access-Control-Request-Method', 'POST')
          .set('Access-Control-Request-Headers', 'authorization');
        // Answered by the app itself (a preflight carries no token: 401), with nothing for a browser.
        expect(pre.status).toBe(401);
        expect(corsHeaders(pre.headers), origin).toEqual([]);
        const res = await http.get('/api/tags/').set(user.auth).set('Origin', origin).expect(200);
        expect(corsHeaders(res.headers), origin).toEqual([]);
      }
    });
  });
});

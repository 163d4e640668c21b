import { Writable } from 'node:stream';
import express, { type RequestHandler } from 'express';
import helmet from 'helmet';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../db/open-database';
import { createApp } from '../server/app';
import { JSON_API_HEADERS, securityHeaders } from '../server/http/security-headers';
import { describeApi, STRONG_PASSWORD, uniqueName, type TestUser } from './support/api';
import { createTestDatabase, dialects, type TestDatabase } from './support/databases';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const allowed = (res: supertest.Response) =>
  String(res.headers.allow)
    .split(',')
    .map((method) => method.trim())
    .sort();

describeApi('http', (ctx) => {
  let ann: TestUser;

  beforeAll(async () => {
    ann = await ctx.createUser();
  });

  const tagCount = async () => (await ctx.http.get('/api/tags/').set(ann.auth).expect(200)).body.length;

  const postTagsRaw = (body: string, contentType = 'application/json') =>
    ctx.http.post('/api/tags/').set(ann.auth).set('Content-Type', contentType).send(body);

  it('answers malformed JSON with 400 {detail} and writes nothing', async () => {
    const before = await tagCount();
    for (const body of ['{"title":', '{title: "x"}', "{'title': 'x'}", '{"title": "x"}}', '[1,]']) {
      const res = await postTagsRaw(body);
      expect(res.status, body).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ detail: expect.stringContaining('JSON') });
    }
    // The body is read before authentication, so a client without a token learns the same.
    const anonymous = await ctx.http.post('/auth/users/').set('Content-Type', 'application/json').send('{"username":');
    expect(anonymous.status).toBe(400);
    expect(anonymous.body).toEqual({ detail: expect.any(String) });
    expect(await tagCount()).toBe(before);
  });

  it('refuses a body over 100 KB with 413 {detail} and writes nothing', async () => {
    const before = await tagCount();
    const huge = await ctx.http
      .post('/api/tags/')
      .set(ann.auth)
      .send({ title: 'x'.repeat(150 * 1024) })
      .expect(413);
    expect(huge.body).toEqual({ detail: expect.stringContaining('100kb') });
    expect(huge.headers['x-request-id']).toMatch(UUID);

    const project = await ctx.http.post('/api/projects/').set(ann.auth).send({ title: 'Sized' }).expect(201);
    await ctx.http
      .patch(`/api/projects/${project.body.id}/`)
      .set(ann.auth)
      .send({ description: 'd'.repeat(150 * 1024) })
      .expect(413);
    expect((await ctx.http.get(`/api/projects/${project.body.id}/`).set(ann.auth).expect(200)).body).toEqual(project.body);

    // Under the limit the body is read, and then judged by the contract.
    const under = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'x'.repeat(90 * 1024) }).expect(400);
    expect(Object.keys(under.body)).toEqual(['title']);
    expect(await tagCount()).toBe(before);
  });

  it('answers a JSON body that is not an object with 400 {"non_field_errors": [...]}', async () => {
    const before = await tagCount();
    const array = await ctx.http.post('/api/tags/').set(ann.auth).send([{ title: 'in an array' }]).expect(400);
    expect(array.body).toEqual({ non_field_errors: [expect.stringContaining('array')] });
    for (const [body, got] of [
      ['"a string"', 'string'],
      ['42', 'number'],
      ['true', 'boolean'],
      ['null', 'null'],
      [' "padded" ', 'string'],
    ]) {
      const res = await postTagsRaw(body);
      expect(res.status, body).toBe(400);
      expect(res.body).toEqual({ non_field_errors: [expect.stringContaining(got)] });
    }
    const project = await ctx.http.post('/api/projects/').set(ann.auth).send({ title: 'Shapes' }).expect(201);
    const patch = await ctx.http
      .patch(`/api/projects/${project.body.id}/`)
      .set(ann.auth)
      .set('Content-Type', 'application/json')
      .send('"Renamed"')
      .expect(400);
    expect(Object.keys(patch.body)).toEqual(['non_field_errors']);
    expect(await tagCount()).toBe(before);
  });

  it('answers a body that is not JSON with 415 and writes nothing', async () => {
    const before = await tagCount();
    for (const [body, type] of [
      ['title=plain', 'text/plain'],
      // JSON text is not read as JSON unless it says so.
      ['{"title": "disguised"}', 'text/plain'],
      ['title=form', 'application/x-www-form-urlencoded'],
      ['<title>x</title>', 'application/xml'],
    ]) {
      const res = await postTagsRaw(body, type).expect(415);
      expect(res.body).toEqual({ detail: `Unsupported media type "${type}" in request.` });
    }
    // A PATCH too; and the token is checked first.
    const tag = await ctx.http.post('/api/tags/').set(ann.auth).send({ title: 'typed' }).expect(201);
    await ctx.http.patch(`/api/tags/${tag.body.id}/`).set(ann.auth).set('Content-Type', 'text/plain').send('title=x').expect(415);
    await ctx.http.post('/api/tags/').set('Content-Type', 'text/plain').send('title=x').expect(401);
    // Public routes too: a form-encoded registration is refused, not half-read.
    const username = `form_${Date.now()}`;
    await ctx.http.post('/auth/users/').type('form').send({ username, password: 'a long enough password 1' }).expect(415);
    await ctx.http.post('/auth/token/login/').send({ username, password: 'a long enough password 1' }).expect(400);
    const tags = (await ctx.http.get('/api/tags/').set(ann.auth)).body.map((t: { title: string }) => t.title);
    expect(tags).toEqual(expect.arrayContaining(['typed']));
    expect(tags).not.toContain('disguised');
    expect(tags.length).toBe(before + 1);
  });

  it('takes a JSON body with a charset, and a POST without a body whatever its headers', async () => {
    const res = await postTagsRaw(JSON.stringify({ title: 'with charset' }), 'application/json; charset=utf-8').expect(201);
    expect(res.body).toEqual({ id: expect.any(Number), title: 'with charset' });
    // Actions that take no body: an empty POST (Content-Length: 0) is fine with any content type.
    const login = await ctx.http.post('/auth/token/login/').send({ username: ann.username, password: ann.password }).expect(200);
    await ctx.http.post('/auth/token/logout/').set('Authorization', `Token ${login.body.auth_token}`).set('Content-Type', 'text/plain').expect(204);
  });

  it('matches routes as express does: without the trailing slash, in any letter case, params decoded', async () => {
    const project = (await ctx.http.post('/api/projects/').set(ann.auth).send({ title: 'routed' }).expect(201)).body;
    const id = String(project.id);
    for (const path of [`/api/projects/${id}`, `/API/Projects/${id}/`, `/api/projects/%3${id[0]}${id.slice(1)}/`]) {
      const res = await ctx.http.get(path).set(ann.auth);
      expect([res.status, res.body], path).toEqual([200, project]);
    }
    // The query string is not part of the path; an empty segment is.
    expect((await ctx.http.get(`/api/projects/${id}/members/?limit=%ZZ`).set(ann.auth)).status).toBe(400);
    await ctx.http.get(`/api//projects/${id}/`).set(ann.auth).expect(404);
    // A parameter of any length reaches its route, which says it names nothing.
    await ctx.http.get(`/api/projects/${'9'.repeat(500)}/`).set(ann.auth).expect(404);
  });

  it('answers 304 to an If-None-Match that names the ETag, also with the Cache-Control: no-cache that fetch() adds', async () => {
    const first = await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200);
    const etag: string = first.headers.etag;
    expect(etag).toMatch(/^W\/"/);
    for (const [ifNoneMatch, cacheControl] of [
      [etag, undefined],
      [etag, 'no-cache'],
      [`"other", ${etag.replace(/^W\//, '')}`, 'no-cache'],
      ['*', 'max-age=0'],
    ]) {
      const request = ctx.http.get('/auth/users/me/').set(ann.auth).set('If-None-Match', ifNoneMatch!);
      const res = await (cacheControl ? request.set('Cache-Control', cacheControl) : request);
      expect(res.status, `${ifNoneMatch} / ${cacheControl}`).toBe(304);
      expect(res.text).toBe('');
    }
    await ctx.http.get('/auth/users/me/').set(ann.auth).set('If-None-Match', 'W/"stale"').set('Cache-Control', 'no-cache').expect(200);
    // Only GETs: a write is never answered 304.
    await ctx.http.patch('/auth/users/me/').set(ann.auth).set('If-None-Match', '*').send({}).expect(200);
  });

  it('sends the security headers of a JSON API on every answer (helmet)', async () => {
    for (const res of [await ctx.http.get('/auth/users/me/').set(ann.auth), await ctx.http.get('/api/nope/'), await ctx.http.post('/api/tags/').set(ann.auth).send({})]) {
      expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-powered-by']).toBeUndefined();
      // helmet's defaults for HTML pages are left out: they mean nothing to a JSON client.
      for (const header of ['x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies', 'origin-agent-cluster', 'x-xss-protection']) {
        expect(res.headers[header], header).toBeUndefined();
      }
    }
  });

  it('answers an unknown route with 404 JSON, with or without a token', async () => {
    for (const req of [
      ctx.http.get('/api/nope/'),
      ctx.http.get('/api/nope/').set(ann.auth),
      ctx.http.post('/api/nope/').set(ann.auth).send({}),
      ctx.http.get('/nope'),
      ctx.http.get('/api/projects/1/nope/').set(ann.auth),
    ]) {
      const res = await req;
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ detail: 'Not found.' });
    }
  });

  it('answers a known path asked with the wrong method with 405 and Allow', async () => {
    const before = await tagCount();
    const cases: Array<['put' | 'delete' | 'patch' | 'get', string, string[]]> = [
      ['put', '/api/tags/', ['GET', 'POST']],
      ['delete', '/api/projects/', ['GET', 'POST']],
      ['put', '/api/projects/1/', ['DELETE', 'GET', 'PATCH']],
      ['patch', '/api/projects/1/members/', ['GET']],
      ['put', '/api/projects/1/invitations/', ['GET', 'POST']],
      ['get', '/api/invitations/1/accept/', ['POST']],
      ['get', '/api/projects/1/members/2/', ['DELETE']],
      ['get', '/auth/token/login/', ['POST']],
      // A path of its own beside a parameter's: the path, not `{id}/` with the id "test" (a 404).
      ['get', '/api/notifications/mark_all_read/', ['POST']],
      ['get', '/api/notifications/test/', ['POST']],
      ['get', '/API/Notifications/Test', ['POST']],
      ['patch', '/api/time_entries/current_active/', ['GET']],
      ['delete', '/api/time_entries/summary/', ['GET']],
      ['delete', '/api/time_entries/export.csv', ['GET']],
      ['get', '/api/feature-flags/user-features/my_features/log-access/', ['POST']],
    ];
    for (const [method, path, allow] of cases) {
      const res = await ctx.http[method](path).set(ann.auth).send({ title: 'x' });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(allowed(res)).toEqual([...allow, 'OPTIONS'].sort());
      expect(res.body).toEqual({ detail: `Method "${method.toUpperCase()}" not allowed.` });
      // OPTIONS says the same, without a body.
      const options = await ctx.http.options(path).set(ann.auth).expect(204);
      expect(allowed(options)).toEqual([...allow, 'OPTIONS'].sort());
    }
    expect(await tagCount()).toBe(before);
  });

  it('checks the token before the method on paths that need one (401, as DRF)', async () => {
    for (const headers of [{}, { Authorization: 'Token not-a-token' }]) {
      await ctx.http.put('/api/tags/').set(headers).expect(401);
      await ctx.http.delete('/api/notifications/').set(headers).expect(401);
      await ctx.http.get('/api/projects/1/members/2/').set(headers).expect(401);
    }
    // Paths with a public route answer 405 to anyone.
    await ctx.http.get('/auth/token/login/').expect(405);
    await ctx.http.delete('/auth/users/').expect(405);
  });

  it('gives every response an X-Request-Id: the caller’s when sane, else a fresh UUID', async () => {
    const responses = [
      await ctx.http.get('/api/tags/').set(ann.auth).expect(200),
      await ctx.http.get('/api/tags/').expect(401),
      await ctx.http.get('/api/nope/').expect(404),
      await ctx.http.put('/api/tags/').set(ann.auth).expect(405),
      await postTagsRaw('{').expect(400),
    ];
    const ids = responses.map((res) => res.headers['x-request-id']);
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(ids.length);

    for (const sane of ['abc-123', 'trace.id:42_x', 'a'.repeat(128)]) {
      const res = await ctx.http.get('/api/tags/').set(ann.auth).set('X-Request-Id', sane).expect(200);
      expect(res.headers['x-request-id']).toBe(sane);
    }
    for (const insane of ['x'.repeat(300), 'a'.repeat(129), 'has spaces in it', '<script>', 'a/b', '']) {
      const res = await ctx.http.get('/api/tags/').set(ann.auth).set('X-Request-Id', insane).expect(200);
      expect(res.headers['x-request-id'], insane).toMatch(UUID);
    }
  });

  it('serves the OpenAPI document and the docs page without a token', async () => {
    const spec = await ctx.http.get('/openapi.json').expect(200);
    expect(spec.headers['content-type']).toMatch(/^application\/json/);
    expect(spec.body.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining(['/api/projects/', '/api/projects/{id}/', '/api/projects/{id}/members/', '/api/tags/', '/auth/users/']),
    );
    expect(Object.keys(spec.body.paths['/api/projects/{id}/']).sort()).toEqual(['delete', 'get', 'patch']);

    const docs = await ctx.http.get('/docs/').expect(200);
    expect(docs.headers['content-type']).toMatch(/^text\/html/);
    expect(docs.text).toContain('Punchclock API');
    expect(docs.text.toLowerCase()).toContain('swagger');
  });

  it('lets anyone register and log in without a token', async () => {
    const username = uniqueName('public');
    const registered = await ctx.http
      .post('/auth/users/')
      .send({ username, password: STRONG_PASSWORD, first_name: 'Pat' })
      .expect(201);
    expect(registered.body).toEqual({ id: expect.any(Number), username, first_name: 'Pat', last_name: '' });

    const login = await ctx.http.post('/auth/token/login/').send({ username, password: STRONG_PASSWORD }).expect(200);
    expect(login.body).toEqual({ auth_token: expect.any(String) });
    const me = await ctx.http.get('/auth/users/me/').set('Authorization', `Token ${login.body.auth_token}`).expect(200);
    expect(me.body).toMatchObject({ id: registered.body.id, username });

    const wrong = await ctx.http.post('/auth/token/login/').send({ username, password: 'not the password' }).expect(400);
    expect(wrong.body).toEqual({ non_field_errors: [expect.any(String)] });
    await ctx.http.get('/auth/users/me/').expect(401);
  });
});

/**
 * An error nobody planned for, made for real: the app's own connection to the database is closed.
 * The app gets a second store on the test database, so the test database can still be dropped.
 */
describe.each(dialects)('http: unexpected errors [%s]', (dialect) => {
  let database: TestDatabase;
  let store: Store;
  let http: supertest.Agent;
  let token: string;
  const lines: string[] = [];
  const logged = () => lines.map((line) => JSON.parse(line) as Record<string, any>);

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    store = await openDatabase(database.url);
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    http = supertest.agent(createApp({ store, logger: pino({ level: 'info' }, sink), rateLimits: true }));
    const username = uniqueName();
    await http.post('/auth/users/').send({ username, password: STRONG_PASSWORD }).expect(201);
    token = (await http.post('/auth/token/login/').send({ username, password: STRONG_PASSWORD }).expect(200)).body.auth_token;
    await http.get('/api/tags/').set('Authorization', `Token ${token}`).expect(200);
    await store.close();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('answers 500 {"detail": "Internal server error"} with no stack, and logs the stack with the request id', async () => {
    const res = await http
      .get('/api/tags/')
      .set('Authorization', `Token ${token}`)
      .set('X-Request-Id', 'trace-500')
      .expect(500);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.text).toBe('{"detail":"Internal server error"}');
    expect(res.headers['x-request-id']).toBe('trace-500');

    const failure = logged().find((line) => line.msg === 'request failed' && line.req?.id === 'trace-500');
    expect(failure).toBeDefined();
    expect(failure!.level).toBe(50);
    const cause = dialect === 'sqlite' ? 'The database connection is not open' : 'Cannot use a pool after calling end on the pool';
    expect(failure!.err.message).toContain(cause);
    expect(failure!.err.stack).toContain(cause);
    expect(failure!.err.stack).toMatch(/\n\s+at /);
    // The access line of the same request, at error level.
    const access = logged().find((line) => line.msg === 'request errored' && line.req?.id === 'trace-500');
    expect(access).toMatchObject({ level: 50, req: { method: 'GET', url: '/api/tags/' }, res: { statusCode: 500 } });
    expect(access!.responseTime).toEqual(expect.any(Number));
    // The token never reaches the log.
    expect(lines.join('\n')).not.toContain(token);
  });

  it('answers 500 on a public route that reaches the database, under a fresh request id', async () => {
    const res = await http.post('/auth/token/login/').send({ username: 'someone', password: STRONG_PASSWORD }).expect(500);
    expect(res.body).toEqual({ detail: 'Internal server error' });
    const id = res.headers['x-request-id'];
    expect(id).toMatch(UUID);
    const failure = logged().find((line) => line.msg === 'request failed' && line.req?.id === id);
    expect(failure?.err.stack).toMatch(/\n\s+at /);

    const write = await http.post('/api/projects/').set('Authorization', `Token ${token}`).send({ title: 'x' }).expect(500);
    expect(write.body).toEqual({ detail: 'Internal server error' });
    expect(write.headers['x-request-id']).toMatch(UUID);
  });

  it('still answers what needs no database', async () => {
    await http.get('/openapi.json').expect(200);
    const res = await http.get('/api/nope/?page=2').expect(404);
    expect(res.body).toEqual({ detail: 'Not found.' });
    const access = logged().find((line) => line.req?.id === res.headers['x-request-id']);
    expect(access).toMatchObject({ level: 30, msg: 'request completed', req: { method: 'GET', url: '/api/nope/?page=2' }, res: { statusCode: 404 } });
    // A public route reads its body without the database (a route that needs a token looks it up first).
    const bad = await http.post('/auth/users/').set('Content-Type', 'application/json').send('{').expect(400);
    expect(bad.body).toEqual({ detail: expect.any(String) });
  });
});

describe('security headers', () => {
  /** The headers of an answer of a bare express app with `middleware` in front, in order, without Date. */
  async function headersWith(middleware: RequestHandler, poweredBy: boolean): Promise<string[]> {
    const app = express();
    if (!poweredBy) app.disable('x-powered-by');
    app.use(middleware);
    app.get('/', (_req, res) => res.json({ ok: true }));
    const answer = await supertest(app).get('/').expect(200);
    const raw: string[] = (answer as unknown as { res: { rawHeaders: string[] } }).res.rawHeaders;
    return raw.flatMap((value, i) => (i % 2 === 0 && value !== 'Date' ? [value, raw[i + 1]] : []));
  }

  it("sets exactly what helmet's middleware sets, in its order, having asked helmet once", async () => {
    for (const poweredBy of [false, true]) {
      const fromHelmet = await headersWith(helmet(JSON_API_HEADERS), poweredBy);
      expect(fromHelmet).toContain('Content-Security-Policy');
      expect(fromHelmet).not.toContain('X-Powered-By');
      expect(await headersWith(securityHeaders(), poweredBy)).toEqual(fromHelmet);
    }
  });
});

import { mkdtempSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Sqlite from 'better-sqlite3';
import express from 'express';
import pg from 'pg';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { contract } from '../contract';
import { errorHandler } from '../server/http/error-handler';
import { useRequestLogging } from '../server/http/request-logging';
import { describeApi, type TestUser } from './support/api';
import { assertNoPrototypePollution, restoreBuiltIns } from './support/prototype-pollution';

describe('arrays in request bodies', () => {
  // Each array a body may carry, with one element too many, every element invalid.
  const overLong = [
    ['POST /api/notifications/', contract.notifications.create.body, (n: number) => ({ user_ids: Array(n).fill('x'), type: 'INFO', message: 'm' }), 10_000],
    ['POST /api/notifications/delivery-status/', contract.notifications.retryDelivery.body, (n: number) => ({ notification_ids: Array(n).fill('x') }), 1000],
    ['POST …/flags/{key}/users/', contract.featureFlags.grant.body, (n: number) => ({ user_ids: Array(n).fill('x') }), 1000],
    ['POST /api/time_entries/', contract.timeEntries.start.body, (n: number) => ({ title: 't', project: 1, tags: Array(n).fill('x') }), 50],
  ] as const;

  it.each(overLong)('refuses an over-long array of %s by its length alone, before looking at its elements', (_route, schema, body, max) => {
    const result = (schema as { safeParse(value: unknown): { success: boolean; error?: { issues: Array<{ code: string }> } } }).safeParse(body(max + 1));
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => issue.code)).toEqual(['too_big']);
  });
});

/**
 * The classes of input that once answered 500 (one of them with express's HTML page and its
 * stack): prototype keys, undecodable path escapes, bodies whose Content-Encoding does not match.
 */
describeApi('hostile input', (ctx) => {
  let ann: TestUser;
  let projectId: number;
  let base: string;

  beforeAll(async () => {
    ann = await ctx.createUser();
    projectId = (await ctx.http.post('/api/projects/').set(ann.auth).send({ title: 'Kept' }).expect(201)).body.id;
    base = await ctx.listen();
  });

  afterEach(() => {
    // A failed poisoning check must not leak into the next test.
    restoreBuiltIns();
  });

  const projects = async () => (await ctx.http.get('/api/projects/').set(ann.auth).expect(200)).body;

  /** fetch, because supertest re-encodes what it is given: these bodies must reach the server as bytes. */
  const send = async (path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer }) => {
    const body = typeof init.body === 'string' || init.body === undefined ? init.body : new Uint8Array(init.body);
    const res = await fetch(`${base}${path}`, { ...init, body, headers: { ...ann.auth, ...init.headers } });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, body: JSON.parse(text) };
  };

  it('answers prototype keys in a body, at any depth, with 400 "Unknown field." and pollutes nothing', async () => {
    const before = await projects();
    const bodies = [
      ['{"__proto__": {"polluted": 1}, "title": "x"}', ['__proto__']],
      ['{"constructor": {"prototype": {"polluted": 1}}, "title": "x"}', ['constructor']],
      ['{"prototype": 1, "title": "x"}', ['prototype']],
      ['{"title": "x", "nested": {"__proto__": {"polluted": 1}, "constructor": 2}}', ['nested']],
      ['{"constructor": 1, "__proto__": 2, "toString": 3, "hasOwnProperty": 4, "title": "x"}', ['constructor', '__proto__', 'toString', 'hasOwnProperty']],
    ] as const;
    for (const [body, unknown] of bodies) {
      const res = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      expect(res.status, body).toBe(400);
      expect(res.type).toMatch(/^application\/json/);
      expect(Object.keys(res.body).sort(), body).toEqual([...unknown].sort());
      for (const key of unknown) expect(res.body[key], key).toEqual(['Unknown field.']);
      const patch = await send(`/api/projects/${projectId}/`, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body });
      expect(patch.status, body).toBe(400);
    }
    // A field the schema knows, given a prototype key inside it, is a wrong type, not a crash.
    const inside = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"title": {"__proto__": {"x": 1}}}' });
    expect(inside.status).toBe(400);
    expect(Object.keys(inside.body)).toEqual(['title']);
    expect(await projects()).toEqual(before);
    assertNoPrototypePollution();
  });

  it('answers a NUL character in any string of a body, at any depth, with 400 on its field, and writes nothing', async () => {
    // Postgres text cannot hold one: these were 500s there (SQLite stored them).
    const NULL_REFUSED = ['Null characters are not allowed.'];
    const json = (method: string, path: string, body: unknown) =>
      send(path, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const before = { projects: await projects(), me: (await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200)).body };
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/api/projects/', { title: 'a\u0000b' }, 'title'],
      ['PATCH', `/api/projects/${projectId}/`, { description: '\u0000' }, 'description'],
      ['POST', '/api/tags/', { title: 'tag\u0000' }, 'title'],
      ['POST', '/api/time_entries/', { title: 'x', project: projectId, tags: ['ok', 'a\u0000'] }, 'tags'],
      ['PATCH', '/auth/users/me/', { first_name: '\u0000' }, 'first_name'],
      ['POST', `/api/projects/${projectId}/invitations/`, { username: 'bob\u0000' }, 'username'],
      ['POST', '/api/notifications/test/', { message: 'a\u0000b', type: 'INFO' }, 'message'],
      ['POST', '/api/projects/', { title: 'x', deep: { a: [[{ b: '\u0000' }]] } }, 'deep'],
      ['POST', '/api/projects/', { title: 'x', keyed: { 'a\u0000': 1 } }, 'keyed'],
      ['POST', '/api/projects/', '\u0000', 'non_field_errors'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await json(method, path, body);
      expect([res.status, res.body], `${method} ${path} ${JSON.stringify(body)}`).toEqual([400, { [field]: NULL_REFUSED }]);
    }
    // Public routes too.
    const registration = await ctx.http.post('/auth/users/').send({ username: 'nul\u0000user', password: 'correct horse battery staple' });
    expect([registration.status, registration.body]).toEqual([400, { username: NULL_REFUSED }]);

    expect(await projects()).toEqual(before.projects);
    expect((await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200)).body).toEqual(before.me);
    expect((await ctx.http.get('/api/tags/').set(ann.auth).expect(200)).body).toEqual([]);
    expect((await ctx.http.get('/api/time_entries/').set(ann.auth).expect(200)).body.results).toEqual([]);
    expect((await ctx.http.get(`/api/projects/${projectId}/invitations/`).set(ann.auth).expect(200)).body).toEqual([]);
    expect((await ctx.http.get('/api/notifications/').set(ann.auth).expect(200)).body).toEqual([]);
  });

  it('reads no body before the token (and an admin route’s admin) was found good: 401 and 403 first, whatever was sent', async () => {
    const malformed = { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"title": ' };
    const anonymous = await fetch(`${base}/api/projects/`, malformed);
    expect([anonymous.status, await anonymous.json()]).toEqual([401, { detail: 'Authentication credentials were not provided.' }]);
    const notAdmin = await send('/api/feature-flags/flags/', malformed);
    expect(notAdmin.status).toBe(403);
    const tooLarge = await fetch(`${base}/api/projects/`, { ...malformed, body: `{"title": "${'x'.repeat(200_000)}"}` });
    expect(tooLarge.status).toBe(401);
    // With a good token the same body is what it is: malformed.
    expect((await send('/api/projects/', malformed)).status).toBe(400);
  });

  it('keeps validation answers small: an over-long array is one problem, and at most 20 problems are reported', async () => {
    const ids = Array(49_000).fill(1); // 98 KB, under the body limit
    const long = await send('/api/notifications/delivery-status/', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ notification_ids: ids }),
    });
    expect(long.status).toBe(400);
    expect(long.body).toEqual({ notification_ids: [expect.stringMatching(/1000/)] });

    const unknown = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`field_${i}`, i]));
    const many = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'x', ...unknown }) });
    expect(many.status).toBe(400);
    const messages = Object.values(many.body as Record<string, string[]>).flat();
    expect(messages).toHaveLength(21);
    expect(many.body.non_field_errors).toEqual(['Only the first 20 problems are reported.']);
    expect(many.text.length).toBeLessThan(2000);
    expect(await projects()).toHaveLength(1);
  });

  it('answers prototype keys in a query string with 400 "Unknown field." and pollutes nothing', async () => {
    for (const query of ['constructor[prototype]=1', 'constructor[prototype][polluted]=1', 'prototype=1', 'constructor=1&limit=5', 'toString=1']) {
      const res = await send(`/api/notifications/?${query}`, {});
      expect(res.status, query).toBe(400);
      const key = query.split(/[[=]/)[0];
      expect(res.body, query).toEqual({ [key]: ['Unknown field.'] });
    }
    // qs drops `__proto__` itself, so that one is simply ignored.
    expect((await send('/api/notifications/?__proto__[polluted]=1', {})).status).toBe(200);
    assertNoPrototypePollution();
  });

  it('answers a path parameter with a broken percent-escape as any malformed id: 404 {"detail": "Not found."}', async () => {
    const before = await projects();
    for (const id of ['%', '%E0%A4%A', '%FF', '%C0%AF', '%ZZ', '1%', '%E0%A4%A/members']) {
      for (const [method, path] of [
        ['GET', `/api/projects/${id}/`],
        ['PATCH', `/api/projects/${id}/`],
        ['DELETE', `/api/projects/${id}/`],
        ['GET', `/api/tags/${id}/`],
        ['POST', `/api/notifications/${id}/acknowledge/`],
        ['DELETE', `/api/projects/${projectId}/members/${id}/`],
      ]) {
        const res = await send(path, { method, headers: { 'Content-Type': 'application/json' }, body: method === 'GET' || method === 'DELETE' ? undefined : '{}' });
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.type).toMatch(/^application\/json/);
        expect(res.body).toEqual({ detail: 'Not found.' });
      }
    }
    expect(await projects()).toEqual(before);
  });

  it('answers a body that does not match its Content-Encoding with 400, an unknown encoding with 415, and writes nothing', async () => {
    const before = await projects();
    const json = '{"title": "encoded"}';
    const cases: Array<[string, string | Buffer, number]> = [
      ['gzip', json, 400],
      ['deflate', json, 400],
      ['gzip', gzipSync(json).subarray(0, 12), 400],
      ['gzip', gzipSync('{"title": "x"').subarray(0), 400],
      ['zstd', json, 415],
      ['br', json, 415],
      ['bogus, gzip', json, 415],
    ];
    for (const [encoding, body, status] of cases) {
      const res = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding }, body });
      expect(res.status, encoding).toBe(status);
      expect(res.type).toMatch(/^application\/json/);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    const charset = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json; charset=latin9' }, body: json });
    expect(charset.status).toBe(415);
    // Bytes that are not UTF-8 are not JSON text.
    const latin1 = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) });
    expect([400]).toContain(latin1.status);
    expect(await projects()).toEqual(before);
  });

  it('reads a body that really is gzip, and stops inflating one at the body limit (413)', async () => {
    const res = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: gzipSync('{"title": "zipped"}') });
    expect(res.status).toBe(201);
    expect(res.body.title).toBe('zipped');
    // 5 MB of JSON in 5 KB of gzip: the limit counts what the body inflates to.
    const bomb = gzipSync(`{"title": "${'x'.repeat(5_000_000)}"}`);
    const refused = await send('/api/projects/', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: bomb });
    expect(refused.status).toBe(413);
  });

  it('answers requests Node’s parser refuses (headers over 16 KB, a malformed request line) as JSON too', async () => {
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(base).port), '127.0.0.1', () => socket.end(request));
        let answer = '';
        socket.on('data', (chunk) => (answer += chunk));
        socket.on('end', () => resolve(answer));
        socket.on('error', reject);
      });
    const cases: Array<[string, number]> = [
      [`GET /api/projects/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['GET /api/projects/ HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n', 400],
      ['NOT A REQUEST\r\n\r\n', 400],
    ];
    for (const [request, status] of cases) {
      const answer = await raw(request);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status]}`);
      expect(head).toMatch(/content-type: application\/json/i);
      expect(JSON.parse(body)).toEqual({ detail: expect.any(String) });
      // Like every answer: the security headers and a request id.
      expect(head).toMatch(/^x-content-type-options: nosniff$/im);
      expect(head).toMatch(/^content-security-policy: default-src 'none';frame-ancestors 'none'$/im);
      expect(head).toMatch(/^x-request-id: [0-9a-f-]{36}$/im);
    }
  });

  it('ignores the body of a GET or DELETE: it is never parsed, so it cannot make the answer fail', async () => {
    const res = await supertest(base).get('/api/projects/').set(ann.auth).set('Content-Type', 'application/json').send('{not json');
    expect(res.status).toBe(200);
    const huge = await supertest(base).get(`/api/projects/${projectId}/`).set(ann.auth).set('Content-Type', 'application/json').send(`"${'x'.repeat(300_000)}"`);
    expect(huge.status).toBe(200);
  });
});

/** The error handler itself, in an express app of its own: errors that no route of ours makes today. */
describe('error handler', () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'error' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line)));
        done();
      },
    }),
  );

  function appThrowing(error: unknown) {
    const app = express();
    useRequestLogging(app, logger);
    app.get('/', (_req, _res, next) => next(error));
    app.use(errorHandler);
    return supertest(app);
  }

  it('honours the 4xx status of errors express and its parsers raise, with a JSON detail', async () => {
    for (const [error, status] of [
      [Object.assign(new Error('zlib says no'), { status: 400, code: 'Z_DATA_ERROR' }), 400],
      [Object.assign(new Error('too big'), { statusCode: 413, type: 'entity.too.large' }), 413],
      [Object.assign(new Error('no'), { status: 415, type: 'encoding.unsupported' }), 415],
      [Object.assign(new Error('odd'), { status: 431 }), 431],
    ] as const) {
      const res = await appThrowing(error).get('/');
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ detail: expect.any(String) });
      expect(res.text).not.toContain(error.message);
    }
  });

  it('answers a query that met a conflicting one (a deadlock, a database locked by another process) 503 with Retry-After', async () => {
    // A real SQLite "database is locked": another connection holds the write lock, and this one does not wait.
    const file = join(mkdtempSync(join(tmpdir(), 'busy-')), 'db.sqlite');
    const [holder, writer] = [new Sqlite(file), new Sqlite(file)];
    try {
      holder.exec('create table t (x integer)');
      writer.pragma('busy_timeout = 0');
      holder.exec('begin immediate');
      const busy = (() => {
        try {
          writer.exec('insert into t values (1)');
        } catch (error) {
          return error;
        }
      })();
      for (const error of [busy, Object.assign(new pg.DatabaseError('deadlock detected', 0, 'error'), { code: '40P01' })]) {
        const res = await appThrowing(error).get('/');
        expect(res.status).toBe(503);
        expect(res.headers['retry-after']).toBe('1');
        expect(res.body).toEqual({ detail: 'The request met a conflicting one in the database; try again.' });
      }
    } finally {
      holder.close();
      writer.close();
    }
  });

  it('answers a database that does not answer with the README\'s 503, its detail and Retry-After: 2', async () => {
    // Refused (a stopped server) or cut (drizzle wraps the driver's error as its cause).
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    for (const error of [refused, new Error('Failed query: select 1', { cause: refused })]) {
      const res = await appThrowing(error).get('/');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.body).toEqual({ detail: 'The database is not available at the moment; try again shortly.' });
    }
  });

  it('answers every other error, a 5xx status included, with the JSON 500', async () => {
    for (const error of [new Error('boom'), Object.assign(new Error('upstream'), { status: 503 }), 'a string', { status: '400' }]) {
      const res = await appThrowing(error).get('/');
      expect(res.status).toBe(500);
      expect(res.text).toBe('{"detail":"Internal server error"}');
    }
  });

  it('ends as the JSON 500, never express’s HTML page, when building the answer itself throws, whatever NODE_ENV is', async () => {
    const hostile = new Proxy(new Error('hostile'), {
      get() {
        throw new Error('every property read throws');
      },
      getPrototypeOf() {
        throw new Error('so does the prototype');
      },
    });
    const previous = process.env.NODE_ENV;
    try {
      for (const env of ['development', 'production', 'test']) {
        process.env.NODE_ENV = env;
        const res = await appThrowing(hostile).get('/');
        expect(res.status, env).toBe(500);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(res.text).toBe('{"detail":"Internal server error"}');
        expect(res.text).not.toMatch(/<html|\bat \//i);
      }
    } finally {
      process.env.NODE_ENV = previous;
    }
    expect(lines.some((line) => line.msg === 'building the error answer failed')).toBe(true);
  });
});

import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { ValidationFailed } from '../server/errors';
import { describeApi, STRONG_PASSWORD, uniqueName, type ApiContext, type TestUser } from './support/api';
import { insertCheapUsers as insertCheapUsersIn } from './support/cheap-users';

const INVALID_CREDENTIALS = { non_field_errors: ['Unable to log in with provided credentials.'] };

const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

async function userCount(ctx: ApiContext): Promise<number> {
  const { db, t } = ctx.database.store;
  return (await db.select({ id: t.users.id }).from(t.users)).length;
}

const login = (ctx: ApiContext, username: string, password: string) =>
  ctx.http.post('/auth/token/login/').send({ username, password });

/** Inserts users that log in with STRONG_PASSWORD cheaply (see CHEAP_HASH); returns their ids. */
const insertCheapUsers = (ctx: ApiContext, usernames: string[], firstName = '') =>
  insertCheapUsersIn(ctx.database.store, usernames, firstName);

/** Like ctx.createUser (a unique user, logged in over HTTP), without the cost of a real hash. */
async function fastUser(ctx: ApiContext, options: { firstName?: string } = {}): Promise<TestUser> {
  const username = uniqueName();
  const [id] = await insertCheapUsers(ctx, [username], options.firstName);
  const token: string = (await login(ctx, username, STRONG_PASSWORD).expect(200)).body.auth_token;
  return { id, username, password: STRONG_PASSWORD, token, auth: { Authorization: `Token ${token}` } };
}

/** Every protected route of the auth domain, as a request builder taking the headers to send. */
const protectedRoutes = (ctx: ApiContext) =>
  [
    ['POST /auth/token/logout/', (h: Record<string, string>) => ctx.http.post('/auth/token/logout/').set(h)],
    ['GET /auth/users/me/', (h: Record<string, string>) => ctx.http.get('/auth/users/me/').set(h)],
    ['PUT /auth/users/me/', (h: Record<string, string>) => ctx.http.put('/auth/users/me/').set(h).send({ first_name: 'X', last_name: 'Y' })],
    ['PATCH /auth/users/me/', (h: Record<string, string>) => ctx.http.patch('/auth/users/me/').set(h).send({ first_name: 'X' })],
  ] as const;

describeApi('auth', (ctx) => {
  it('registers a user and answers only the public fields', async () => {
    const username = uniqueName('reg');
    const res = await ctx.http
      .post('/auth/users/')
      .send({ username, password: STRONG_PASSWORD, first_name: 'Ann', last_name: 'Lee' })
      .expect(201);
    expect(res.body).toEqual({ id: expect.any(Number), username, first_name: 'Ann', last_name: 'Lee' });
    expect(JSON.stringify(res.body)).not.toContain(STRONG_PASSWORD);
    expect(JSON.stringify(res.body)).not.toContain('scrypt');

    const minimal = await ctx.http.post('/auth/users/').send({ username: uniqueName('min'), password: STRONG_PASSWORD }).expect(201);
    expect(minimal.body).toMatchObject({ first_name: '', last_name: '' });
    expect(minimal.body.id).not.toBe(res.body.id);

    // The password is kept only as a salted hash.
    const { db, t } = ctx.database.store;
    const [row] = await db.select().from(t.users).where(eq(t.users.id, res.body.id));
    expect(row.passwordHash).not.toContain(STRONG_PASSWORD);
    // scrypt with at least the cost it was introduced with (N=2^14, r=8, p=5): never lowered.
    const [scheme, N, r, p] = row.passwordHash.split('$');
    expect(scheme).toBe('scrypt');
    expect(Number(N) * Number(r) * Number(p)).toBeGreaterThanOrEqual(2 ** 14 * 8 * 5);
    expect(row.isAdmin).toBe(false);
    // Salted per user: the same password gives another hash.
    const [sameSecret] = await db.select().from(t.users).where(eq(t.users.id, minimal.body.id));
    expect(sameSecret.passwordHash).not.toBe(row.passwordHash);
  });

  it('accepts a 150-character username and the allowed punctuation', async () => {
    const long = `${uniqueName('u')}_`.padEnd(150, 'x');
    expect(long).toHaveLength(150);
    const res = await ctx.http.post('/auth/users/').send({ username: long, password: STRONG_PASSWORD }).expect(201);
    expect(res.body.username).toBe(long);
    const punctuated = uniqueName('a.b@c+d-e');
    await ctx.http.post('/auth/users/').send({ username: punctuated, password: STRONG_PASSWORD }).expect(201);
    await login(ctx, punctuated, STRONG_PASSWORD).expect(200);
    // Letters are any script's, as in Django's usernames.
    const unicode = uniqueName('Zoë_山田');
    await ctx.http.post('/auth/users/').send({ username: unicode, password: STRONG_PASSWORD }).expect(201);
    await login(ctx, unicode, STRONG_PASSWORD).expect(200);
  });

  it('round-trips unicode names and trims them', async () => {
    const username = uniqueName('uni');
    const res = await ctx.http
      .post('/auth/users/')
      .send({ username, password: STRONG_PASSWORD, first_name: 'Zoë 山田', last_name: "  Ó'Brien-Łukasz 🎉  " })
      .expect(201);
    expect(res.body).toMatchObject({ first_name: 'Zoë 山田', last_name: "Ó'Brien-Łukasz 🎉" });
    const token = (await login(ctx, username, STRONG_PASSWORD).expect(200)).body.auth_token;
    const me = await ctx.http.get('/auth/users/me/').set({ Authorization: `Token ${token}` }).expect(200);
    expect(me.body).toMatchObject({ username, first_name: 'Zoë 山田', last_name: "Ó'Brien-Łukasz 🎉" });
  });

  it('rejects a duplicate username and keeps the first password', async () => {
    const username = uniqueName('dup');
    await ctx.http.post('/auth/users/').send({ username, password: STRONG_PASSWORD }).expect(201);
    const before = await userCount(ctx);
    const dup = await ctx.http.post('/auth/users/').send({ username, password: 'another fine password' }).expect(400);
    expect(dup.body).toEqual({ username: ['A user with that username already exists.'] });
    expect(await userCount(ctx)).toBe(before);
    await login(ctx, username, STRONG_PASSWORD).expect(200);
    await login(ctx, username, 'another fine password').expect(400);
  });

  it('rejects weak passwords with 400 on password and writes nothing', async () => {
    const before = await userCount(ctx);
    const username = uniqueName('weak');
    const weak = ['', 'Abc1234', '12345678901', '          ', username, username.toUpperCase(), 'x'.repeat(129)];
    for (const password of weak) {
      const res = await ctx.http.post('/auth/users/').send({ username, password }).expect(400);
      expect(Object.keys(res.body)).toEqual(['password']);
      expect(res.body.password.length).toBeGreaterThan(0);
      expect(res.body.password.every((message: unknown) => typeof message === 'string' && message.length > 0)).toBe(true);
    }
    const tooShort = await ctx.http.post('/auth/users/').send({ username, password: 'Abc1234' }).expect(400);
    expect(tooShort.body.password).toEqual(['This password is too short. It must contain at least 8 characters.']);
    const numeric = await ctx.http.post('/auth/users/').send({ username, password: '1234567' }).expect(400);
    expect(numeric.body.password).toHaveLength(2);

    expect(await userCount(ctx)).toBe(before);
    await login(ctx, username, '').expect(400);
    await login(ctx, username, 'Abc1234').expect(400);
  });

  it('rejects malformed registrations with 400 naming the field, and writes nothing', async () => {
    const before = await userCount(ctx);
    const ok = { username: uniqueName('bad'), password: STRONG_PASSWORD };
    const cases: Array<[unknown, string[]]> = [
      [{ ...ok, username: 'has space' }, ['username']],
      [{ ...ok, username: 'slash/name' }, ['username']],
      [{ ...ok, username: 'semi;colon' }, ['username']],
      [{ ...ok, username: '' }, ['username']],
      [{ ...ok, username: 'x'.repeat(151) }, ['username']],
      [{ ...ok, username: 42 }, ['username']],
      [{ ...ok, password: 12345678 }, ['password']],
      [{ ...ok, password: null }, ['password']],
      [{ ...ok, first_name: 7 }, ['first_name']],
      [{ ...ok, last_name: null }, ['last_name']],
      [{ ...ok, first_name: 'x'.repeat(151) }, ['first_name']],
      [{ ...ok, is_admin: true }, ['is_admin']],
      [{ ...ok, profile_image: 'x.png' }, ['profile_image']],
      [{ username: ok.username }, ['password']],
      [{ password: ok.password }, ['username']],
      [{}, ['password', 'username']],
      [[], ['non_field_errors']],
      [[ok], ['non_field_errors']],
    ];
    for (const [body, fields] of cases) {
      const res = await ctx.http.post('/auth/users/').send(body as object).expect(400);
      expect(Object.keys(res.body).sort(), JSON.stringify(body).slice(0, 80)).toEqual(fields);
    }
    const missing = await ctx.http.post('/auth/users/').send({}).expect(400);
    expect(missing.body).toEqual({ username: ['This field is required.'], password: ['This field is required.'] });
    const unknown = await ctx.http.post('/auth/users/').send({ ...ok, is_admin: true }).expect(400);
    expect(unknown.body).toEqual({ is_admin: ['Unknown field.'] });

    // Not JSON at all, and JSON that is not an object.
    const garbage = await ctx.http.post('/auth/users/').set('Content-Type', 'application/json').send('{"username":').expect(400);
    expect(garbage.body).toEqual({ detail: expect.any(String) });
    const scalar = await ctx.http.post('/auth/users/').set('Content-Type', 'application/json').send('"just a string"').expect(400);
    expect(Object.keys(scalar.body).length).toBeGreaterThan(0);

    expect(await userCount(ctx)).toBe(before);
    await login(ctx, ok.username, ok.password).expect(400);
  });

  it('logs in with a long random token kept only as its SHA-256 digest', async () => {
    const user = await ctx.createUser(); // the real path: registered with a real hash
    const res = await login(ctx, user.username, user.password).expect(200);
    expect(Object.keys(res.body)).toEqual(['auth_token']);
    // No cache between client and server may keep it.
    expect(res.headers['cache-control']).toBe('no-store');
    const token: string = res.body.auth_token;
    // README: "tokens are 256 random bits": 32 bytes, sent as unpadded base64url (43 characters).
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const bytes = Buffer.from(token, 'base64url');
    expect(bytes).toHaveLength(32);
    expect(bytes.toString('base64url')).toBe(token); // the canonical encoding of those 32 bytes, nothing else
    expect(token).not.toBe(user.token);

    const { db, t } = ctx.database.store;
    const rows = await db.select().from(t.authTokens).where(eq(t.authTokens.userId, user.id));
    expect(rows).toHaveLength(2); // createUser's login and this one
    const digests = rows.map((row) => row.digest);
    expect(digests).not.toContain(token);
    expect(digests).not.toContain(user.token);
    expect(digests.sort()).toEqual([sha256Hex(token), sha256Hex(user.token)].sort());
    for (const digest of digests) expect(digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a wrong password and an unknown user with the same message', async () => {
    const user = await fastUser(ctx);
    const tokensBefore = (await ctx.database.store.db.select().from(ctx.database.store.t.authTokens)).length;
    const wrong = await login(ctx, user.username, 'not the password').expect(400);
    expect(wrong.body).toEqual(INVALID_CREDENTIALS);
    const unknown = await login(ctx, uniqueName('ghost'), STRONG_PASSWORD).expect(400);
    expect(unknown.body).toEqual(INVALID_CREDENTIALS);
    const caseChanged = await login(ctx, user.username, STRONG_PASSWORD.toUpperCase()).expect(400);
    expect(caseChanged.body).toEqual(INVALID_CREDENTIALS);
    const empty = await login(ctx, user.username, '').expect(400);
    expect(empty.body).toEqual(INVALID_CREDENTIALS);
    expect((await ctx.database.store.db.select().from(ctx.database.store.t.authTokens)).length).toBe(tokensBefore);
  });

  it('rejects malformed login bodies with 400 naming the field', async () => {
    const cases: Array<[unknown, string[]]> = [
      [{}, ['password', 'username']],
      [{ username: 'someone' }, ['password']],
      [{ username: 42, password: 'x' }, ['username']],
      [{ username: 'someone', password: 'x', remember: true }, ['remember']],
      [{ username: 'x'.repeat(151), password: 'x' }, ['username']],
      [[], ['non_field_errors']],
    ];
    for (const [body, fields] of cases) {
      const res = await ctx.http.post('/auth/token/login/').send(body as object).expect(400);
      expect(Object.keys(res.body).sort(), JSON.stringify(body).slice(0, 80)).toEqual(fields);
    }
  });

  it('accepts Token and Bearer schemes in any case', async () => {
    const user = await fastUser(ctx);
    for (const scheme of ['Token', 'Bearer', 'token', 'bearer', 'TOKEN', 'BeArEr']) {
      const res = await ctx.http.get('/auth/users/me/').set('Authorization', `${scheme} ${user.token}`).expect(200);
      expect(res.body.id).toBe(user.id);
    }
    const spaced = await ctx.http.get('/auth/users/me/').set('Authorization', `Token    ${user.token}`).expect(200);
    expect(spaced.body.username).toBe(user.username);
  });

  it('answers 401 with detail and WWW-Authenticate on every protected route without a valid token', async () => {
    const user = await fastUser(ctx);
    const altered = `${user.token.slice(0, -1)}${user.token.endsWith('A') ? 'B' : 'A'}`;
    const bad: Array<Record<string, string>> = [
      {},
      { Authorization: '' },
      { Authorization: 'Token garbage' },
      { Authorization: 'Basic x' },
      { Authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}` },
      { Authorization: 'Token ' },
      { Authorization: 'Token' },
      { Authorization: 'Bearer' },
      { Authorization: `Token ${user.token} extra` },
      { Authorization: `Token ${altered}` },
      { Authorization: `Token ${user.token}.` },
      { Authorization: user.token },
      { Authorization: `Token ${sha256Hex(user.token)}` }, // the stored digest is not a credential
    ];
    for (const [name, send] of protectedRoutes(ctx)) {
      for (const headers of bad) {
        const res = await send(headers);
        expect(res.status, `${name} with ${JSON.stringify(headers)}`).toBe(401);
        expect(res.body).toEqual({ detail: expect.any(String) });
        expect(res.headers['www-authenticate']).toBe('Token');
      }
    }
    const missing = await ctx.http.get('/auth/users/me/').expect(401);
    expect(missing.body).toEqual({ detail: 'Authentication credentials were not provided.' });

    // None of those requests changed anything, and the real token still works.
    const me = await ctx.http.get('/auth/users/me/').set(user.auth).expect(200);
    expect(me.body).toMatchObject({ first_name: '', last_name: '' });
  });

  it('shows the authenticated user', async () => {
    const user = await fastUser(ctx, { firstName: 'Mia' });
    const res = await ctx.http.get('/auth/users/me/').set(user.auth).expect(200);
    expect(res.body).toEqual({
      id: user.id,
      username: user.username,
      first_name: 'Mia',
      last_name: '',
      profile_image: null,
      is_admin: false,
    });
  });

  it('replaces names with PUT, which requires both', async () => {
    const user = await fastUser(ctx, { firstName: 'Old' });
    const onlyFirst = await ctx.http.put('/auth/users/me/').set(user.auth).send({ first_name: 'New' }).expect(400);
    expect(onlyFirst.body).toEqual({ last_name: ['This field is required.'] });
    const onlyLast = await ctx.http.put('/auth/users/me/').set(user.auth).send({ last_name: 'New' }).expect(400);
    expect(Object.keys(onlyLast.body)).toEqual(['first_name']);
    await ctx.http.put('/auth/users/me/').set(user.auth).send({}).expect(400);
    expect((await ctx.http.get('/auth/users/me/').set(user.auth)).body).toMatchObject({ first_name: 'Old', last_name: '' });

    const res = await ctx.http.put('/auth/users/me/').set(user.auth).send({ first_name: 'Zoë', last_name: '山田' }).expect(200);
    expect(res.body).toEqual({
      id: user.id,
      username: user.username,
      first_name: 'Zoë',
      last_name: '山田',
      profile_image: null,
      is_admin: false,
    });
    const after = await ctx.http.get('/auth/users/me/').set(user.auth).expect(200);
    expect(after.body).toMatchObject({ first_name: 'Zoë', last_name: '山田' });
  });

  it('updates some names with PATCH', async () => {
    const user = await fastUser(ctx, { firstName: 'Keep' });
    const res = await ctx.http.patch('/auth/users/me/').set(user.auth).send({ last_name: 'Added' }).expect(200);
    expect(res.body).toMatchObject({ id: user.id, first_name: 'Keep', last_name: 'Added', is_admin: false });

    const empty = await ctx.http.patch('/auth/users/me/').set(user.auth).send({}).expect(200);
    expect(empty.body).toMatchObject({ id: user.id, username: user.username, first_name: 'Keep', last_name: 'Added' });

    await ctx.http.patch('/auth/users/me/').set(user.auth).send({ first_name: '  Spaced  ' }).expect(200);
    const after = await ctx.http.get('/auth/users/me/').set(user.auth).expect(200);
    expect(after.body).toMatchObject({ first_name: 'Spaced', last_name: 'Added' });

    const exactly150 = 'n'.repeat(150);
    await ctx.http.patch('/auth/users/me/').set(user.auth).send({ last_name: exactly150 }).expect(200);
    expect((await ctx.http.get('/auth/users/me/').set(user.auth)).body.last_name).toBe(exactly150);
  });

  it('rejects bad name updates with 400 and changes nothing', async () => {
    const user = await fastUser(ctx, { firstName: 'Same' });
    const cases: Array<['put' | 'patch', unknown, string[]]> = [
      ['patch', { first_name: 'x'.repeat(151) }, ['first_name']],
      ['put', { first_name: 'ok', last_name: 'y'.repeat(151) }, ['last_name']],
      ['patch', { first_name: 5 }, ['first_name']],
      ['patch', { last_name: null }, ['last_name']],
      ['patch', { is_admin: true }, ['is_admin']],
      ['patch', { username: 'renamed' }, ['username']],
      ['put', { first_name: 'a', last_name: 'b', profile_image: 'x' }, ['profile_image']],
      ['patch', { first_name: 'a', password: 'new password 123' }, ['password']],
      ['patch', [], ['non_field_errors']],
      ['put', [], ['non_field_errors']],
    ];
    for (const [method, body, fields] of cases) {
      const res = await ctx.http[method]('/auth/users/me/').set(user.auth).send(body as object).expect(400);
      expect(Object.keys(res.body).sort(), `${method} ${JSON.stringify(body).slice(0, 60)}`).toEqual(fields);
    }
    const me = await ctx.http.get('/auth/users/me/').set(user.auth).expect(200);
    expect(me.body).toEqual({
      id: user.id,
      username: user.username,
      first_name: 'Same',
      last_name: '',
      profile_image: null,
      is_admin: false,
    });
    await login(ctx, user.username, user.password).expect(200);
  });

  it('logs out only the token of the request', async () => {
    const user = await fastUser(ctx);
    const second = (await login(ctx, user.username, user.password).expect(200)).body.auth_token as string;

    const res = await ctx.http.post('/auth/token/logout/').set(user.auth).expect(204);
    expect(res.text).toBe('');
    await ctx.http.get('/auth/users/me/').set(user.auth).expect(401);
    await ctx.http.post('/auth/token/logout/').set(user.auth).expect(401);
    await ctx.http.patch('/auth/users/me/').set(user.auth).send({ first_name: 'x' }).expect(401);

    const me = await ctx.http.get('/auth/users/me/').set('Authorization', `Bearer ${second}`).expect(200);
    expect(me.body.id).toBe(user.id);
    const { db, t } = ctx.database.store;
    const left = await db.select().from(t.authTokens).where(eq(t.authTokens.userId, user.id));
    expect(left.map((row) => row.digest)).toEqual([sha256Hex(second)]);

    await ctx.http.post('/auth/token/logout/').set('Authorization', `Bearer ${second}`).expect(204);
    await ctx.http.get('/auth/users/me/').set('Authorization', `Bearer ${second}`).expect(401);
    // Logging in again after logging out works.
    const again = (await login(ctx, user.username, user.password).expect(200)).body.auth_token as string;
    await ctx.http.get('/auth/users/me/').set('Authorization', `Token ${again}`).expect(200);
  });

  it("never lets one user see or change another's account", async () => {
    const [ann, bob]: TestUser[] = await Promise.all([fastUser(ctx, { firstName: 'Ann' }), fastUser(ctx, { firstName: 'Bob' })]);
    const changed = await ctx.http.patch('/auth/users/me/').set(bob.auth).send({ first_name: 'Robert', last_name: 'B' }).expect(200);
    expect(changed.body).toMatchObject({ id: bob.id, username: bob.username, first_name: 'Robert' });
    const annMe = await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200);
    expect(annMe.body).toMatchObject({ id: ann.id, username: ann.username, first_name: 'Ann', last_name: '' });
    await ctx.http.put('/auth/users/me/').set(ann.auth).send({ first_name: 'Anna', last_name: 'A' }).expect(200);
    const bobMe = await ctx.http.get('/auth/users/me/').set(bob.auth).expect(200);
    expect(bobMe.body).toMatchObject({ id: bob.id, first_name: 'Robert', last_name: 'B' });

    // Bob logging out leaves Ann's token alone.
    await ctx.http.post('/auth/token/logout/').set(bob.auth).expect(204);
    await ctx.http.get('/auth/users/me/').set(ann.auth).expect(200);
  });

  it('ensureUser creates an admin once and never changes its password', async () => {
    const username = uniqueName('admin');
    expect(await ctx.services.auth.ensureUser({ username, password: STRONG_PASSWORD, isAdmin: true })).toBe(true);
    expect(await ctx.services.auth.ensureUser({ username, password: 'a different password', isAdmin: false })).toBe(false);

    await login(ctx, username, 'a different password').expect(400);
    const token = (await login(ctx, username, STRONG_PASSWORD).expect(200)).body.auth_token;
    const me = await ctx.http.get('/auth/users/me/').set('Authorization', `Token ${token}`).expect(200);
    expect(me.body).toMatchObject({ username, is_admin: true });

    const { db, t } = ctx.database.store;
    expect(await db.select().from(t.users).where(eq(t.users.username, username))).toHaveLength(1);

    // An admin cannot be created with a weak password either.
    const weak = uniqueName('weakadmin');
    await expect(ctx.services.auth.ensureUser({ username: weak, password: '1234', isAdmin: true })).rejects.toBeInstanceOf(
      ValidationFailed,
    );
    expect(await db.select().from(t.users).where(eq(t.users.username, weak))).toHaveLength(0);
  });

  it('concurrent ensureUser calls create the user exactly once', async () => {
    const username = uniqueName('race');
    const results = await Promise.all(
      Array.from({ length: 4 }, () => ctx.services.auth.ensureUser({ username, password: STRONG_PASSWORD, isAdmin: true })),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const { db, t } = ctx.database.store;
    expect(await db.select().from(t.users).where(eq(t.users.username, username))).toHaveLength(1);
  });
});

// README, "Limits": "10 failed attempts for one username, or 50 from one address, within 15 minutes,
// and further attempts are refused with 429 and Retry-After until the window has passed". The
// README's figures, not the code's constants: a change of either must show here.
const PER_USERNAME = 10;
const PER_ADDRESS = 50;
const LOGIN_WINDOW_SECONDS = 15 * 60;

describeApi('auth login throttle', (ctx) => {
  /** Checks a refusal; returns its Retry-After in seconds. */
  const expectThrottled = (res: { status: number; body: unknown; headers: Record<string, string> }): number => {
    expect(res.status).toBe(429);
    expect(res.body).toEqual({ detail: expect.any(String) });
    const retryAfter = res.headers['retry-after'];
    expect(retryAfter).toMatch(/^[1-9]\d*$/);
    expect(Number(retryAfter)).toBeLessThanOrEqual(LOGIN_WINDOW_SECONDS);
    return Number(retryAfter);
  };

  it('refuses a username after too many failed logins, even with the right password, for the rest of 15 minutes', async () => {
    const [victim, other] = await Promise.all([fastUser(ctx), fastUser(ctx)]);
    const firstFailureSent = Date.now();
    for (let attempt = 1; attempt <= PER_USERNAME; attempt++) {
      const res = await login(ctx, victim.username, `wrong ${attempt}`);
      expect(res.status, `attempt ${attempt}`).toBe(400);
      expect(res.body).toEqual(INVALID_CREDENTIALS);
    }
    const retryAfter = expectThrottled(await login(ctx, victim.username, victim.password));
    // The window opened with the first failure: what is left of its 15 minutes, not a fresh 15 minutes
    // and not a token second. (login-window.test.ts waits out a shortened window.)
    const elapsedSeconds = (Date.now() - firstFailureSent) / 1000;
    expect(retryAfter).toBeGreaterThanOrEqual(LOGIN_WINDOW_SECONDS - elapsedSeconds);
    expectThrottled(await login(ctx, victim.username, 'wrong again'));

    // Tokens issued before stay valid; other usernames are not affected.
    await ctx.http.get('/auth/users/me/').set(victim.auth).expect(200);
    await login(ctx, other.username, other.password).expect(200);
  });

  it('throttles unknown usernames too', async () => {
    const ghost = uniqueName('ghost');
    const failures = await Promise.all(
      Array.from({ length: PER_USERNAME }, (_, i) => login(ctx, ghost, `guess ${i}`)),
    );
    expect(failures.map((res) => res.status)).toEqual(Array(PER_USERNAME).fill(400));
    expectThrottled(await login(ctx, ghost, 'one more'));
  });

  it('forgets the failures of a username when it logs in successfully', async () => {
    const user = await fastUser(ctx);
    for (let attempt = 1; attempt < PER_USERNAME; attempt++) {
      await login(ctx, user.username, `wrong ${attempt}`).expect(400);
    }
    await login(ctx, user.username, user.password).expect(200);
    await login(ctx, user.username, 'wrong once more').expect(400);
    // Without the reset that was the limit's last failure, and this would be refused with 429.
    await login(ctx, user.username, user.password).expect(200);
  });

  it('counts concurrent guesses: no more than the limit get an answer about the password', async () => {
    // A real hash: its ~250 ms verification is the window in which concurrent guesses could slip past.
    const user = await ctx.createUser();
    const attempts = PER_USERNAME + 5;
    const results = await Promise.all(Array.from({ length: attempts }, (_, i) => login(ctx, user.username, `parallel ${i}`)));
    const statuses = results.map((res) => res.status);
    expect(statuses.filter((status) => status === 400)).toHaveLength(PER_USERNAME);
    expect(statuses.filter((status) => status === 429)).toHaveLength(attempts - PER_USERNAME);
    for (const res of results.filter((r) => r.status === 429)) expectThrottled(res);
    expectThrottled(await login(ctx, user.username, user.password));
  });
});

describeApi('auth login throttle per address', (ctx) => {
  it('never limits many successful logins of distinct users from one address', async () => {
    const count = PER_ADDRESS + 5;
    const usernames = Array.from({ length: count }, () => uniqueName('many'));
    await insertCheapUsers(ctx, usernames);
    const statuses: number[] = [];
    for (let i = 0; i < count; i += 10) {
      const batch = await Promise.all(usernames.slice(i, i + 10).map((username) => login(ctx, username, STRONG_PASSWORD)));
      statuses.push(...batch.map((res) => res.status));
    }
    expect(statuses).toEqual(Array(count).fill(200));
  });
});

// An app of its own: once its address is refused, every login from it is (supertest's are all from
// 127.0.0.1), so in the suite above the successful logins would then depend on running first.
describeApi('auth login throttle per address, exhausted', (ctx) => {
  it('refuses every login from an address after too many failures from it', async () => {
    const user = await fastUser(ctx);
    // Existing users with wrong passwords, each username once: only the address limit can be reached.
    const sprayed = Array.from({ length: PER_ADDRESS }, () => uniqueName('spray'));
    await insertCheapUsers(ctx, sprayed);
    const sprayedAt = Date.now();
    const failures = await Promise.all(sprayed.map((username) => login(ctx, username, 'Spring2025!')));
    expect(failures.map((res) => res.status)).toEqual(Array(PER_ADDRESS).fill(400));
    const res = await login(ctx, user.username, user.password);
    expect(res.status).toBe(429);
    expect(res.body).toEqual({ detail: expect.any(String) });
    // What is left of the address's 15 minutes, opened by the first of these failures.
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeLessThanOrEqual(LOGIN_WINDOW_SECONDS);
    expect(retryAfter).toBeGreaterThanOrEqual(LOGIN_WINDOW_SECONDS - (Date.now() - sprayedAt) / 1000);
    // Authenticated requests are not login attempts: they still work.
    await ctx.http.get('/auth/users/me/').set(user.auth).expect(200);
  });
});

// An app of its own, as above: it ends with its address refused.
describeApi('auth login throttle per address, raced', (ctx) => {
  it('counts concurrent failures from one address: no more than the limit get an answer about the password', async () => {
    const sprayed = Array.from({ length: PER_ADDRESS + 30 }, () => uniqueName('race'));
    await insertCheapUsers(ctx, sprayed);
    const results = await Promise.all(sprayed.map((username) => login(ctx, username, 'Spring2025!')));
    const statuses = results.map((res) => res.status);
    expect(statuses.filter((status) => status === 400)).toHaveLength(PER_ADDRESS);
    expect(statuses.filter((status) => status === 429)).toHaveLength(30);
  });
});

describeApi(
  'auth login without rate limits',
  (ctx) => {
    it('never answers 429 however many logins fail', async () => {
      const user = await fastUser(ctx);
      const attempts = PER_USERNAME + 3;
      const statuses: number[] = [];
      for (let i = 0; i < attempts; i++) statuses.push((await login(ctx, user.username, `wrong ${i}`)).status);
      expect(statuses).toEqual(Array(attempts).fill(400));
      const ok = await login(ctx, user.username, user.password).expect(200);
      expect(typeof ok.body.auth_token).toBe('string');
    });
  },
  { rateLimits: false },
);

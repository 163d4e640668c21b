// README, "Limits": "Registrations: 10 accounts per address per hour ... password hashes for new
// accounts run at most two at once" — the README's figures, not the code's constants.
import { expect, it } from 'vitest';
import { describeApi, STRONG_PASSWORD, uniqueName, type ApiContext } from './support/api';

const PER_ADDRESS = 10;
const WINDOW_SECONDS = 60 * 60;

const register = (ctx: ApiContext, username = uniqueName('new')) =>
  ctx.http.post('/auth/users/').send({ username, password: STRONG_PASSWORD });

const userCount = async (ctx: ApiContext) => (await ctx.database.store.db.select().from(ctx.database.store.t.users)).length;

describeApi('registration limit per address', (ctx) => {
  it('registers 10 accounts from one address, also when asked all at once; the rest get 429 and create nothing', async () => {
    const before = await userCount(ctx);
    const results = await Promise.all(Array.from({ length: PER_ADDRESS + 5 }, () => register(ctx)));
    const statuses = results.map((res) => res.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(PER_ADDRESS);
    expect(statuses.filter((status) => status === 429)).toHaveLength(5);
    for (const refused of results.filter((res) => res.status === 429)) {
      expect(refused.body).toEqual({ detail: expect.any(String) });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(WINDOW_SECONDS - 60);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(WINDOW_SECONDS);
    }
    expect(await userCount(ctx)).toBe(before + PER_ADDRESS);
    // Invalid bodies are not counted (nothing was hashed), and still get their 400.
    await ctx.http.post('/auth/users/').send({ username: uniqueName('bad'), password: 'short' }).expect(400);
  });
});

// A suite of its own: the address's allowance of the hour starts full.
describeApi('registration limit per address and taken names', (ctx) => {
  it('counts a registration refused for a taken name: it told the address that the name exists; not one that failed validation', async () => {
    for (const body of [{ username: uniqueName('weak'), password: 'short' }, { username: 'not a name!' }, { password: STRONG_PASSWORD }]) {
      for (let i = 0; i < PER_ADDRESS; i++) await ctx.http.post('/auth/users/').send(body).expect(400);
    }
    const taken = uniqueName('taken');
    expect((await register(ctx, taken)).status).toBe(201);
    for (const spelling of [taken, taken.toUpperCase()]) expect((await register(ctx, spelling)).status, spelling).toBe(400);
    const results = await Promise.all(Array.from({ length: PER_ADDRESS }, () => register(ctx)));
    expect(results.map((res) => res.status).sort()).toEqual([...Array(PER_ADDRESS - 3).fill(201), 429, 429, 429]);
  });
});

describeApi(
  'registration flood without rate limits',
  (ctx) => {
    it('queues new accounts’ hashes behind a bound, so a login during a flood of registrations is answered before the flood is', async () => {
      const user = await ctx.createUser(); // a real hash, like the flood's
      const flood = Array.from({ length: 12 }, () => register(ctx).then((res) => ({ status: res.status, at: performance.now() })));
      const login = ctx.http
        .post('/auth/token/login/')
        .send({ username: user.username, password: user.password })
        .then((res) => ({ status: res.status, at: performance.now() }));
      const [answers, loggedIn] = await Promise.all([Promise.all(flood), login]);
      expect(answers.map((answer) => answer.status)).toEqual(Array(12).fill(201));
      expect(loggedIn.status).toBe(200);
      // Without the bound the login's hash queues behind all 12 in libuv's pool of 4 and comes last.
      expect(answers.filter((answer) => answer.at > loggedIn.at).length).toBeGreaterThanOrEqual(6);
    });
  },
  { rateLimits: false },
);

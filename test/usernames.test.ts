import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { LOGIN_LIMITS } from '../server/auth/login-throttle';
import { fillUsernameKeys } from '../server/auth/username-backfill';
import { usernameKey, usernameSkeleton } from '../server/auth/username-identity';
import { describeApi, STRONG_PASSWORD, type ApiContext } from './support/api';
import { CHEAP_HASH, insertCheapUsers } from './support/cheap-users';

/** A fresh ASCII name of letters and digits (no punctuation, so that its fullwidth form is valid too). */
const freshName = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`;
/** The fullwidth form (ＡＢＣ０１), which NFKC folds back to ASCII. */
const fullwidth = (name: string) => name.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
/** Latin a and o swapped for their Cyrillic look-alikes (U+0430, U+043E). */
const cyrillic = (name: string) => name.replace(/a/g, '\u0430').replace(/o/g, '\u043e');

const register = (ctx: ApiContext, username: string) => ctx.http.post('/auth/users/').send({ username, password: STRONG_PASSWORD });
const login = (ctx: ApiContext, username: string, password = STRONG_PASSWORD) =>
  ctx.http.post('/auth/token/login/').send({ username, password });

async function userCount(ctx: ApiContext): Promise<number> {
  const { db, t } = ctx.database.store;
  return (await db.select({ id: t.users.id }).from(t.users)).length;
}

it('folds case and compatibility forms into one key, and look-alikes into one skeleton', () => {
  expect(usernameKey('Alice')).toBe('alice');
  expect(usernameKey('ａｌｉｃｅ')).toBe('alice');
  expect(usernameKey('Straße')).toBe('strasse');
  expect(usernameKey('\u0430lice')).not.toBe('alice');
  for (const lookAlike of ['\u0430lice', 'AIice', 'Alice', 'ａｌｉｃｅ', 'a1ice']) expect(usernameSkeleton(lookAlike)).toBe(usernameSkeleton('alice'));
  // Capital I looks like l, not like i: ALICE is not alice's look-alike (its key is alice's).
  expect(usernameSkeleton('ALICE')).toBe(usernameSkeleton('allce'));
  for (const distinct of ['alicia', 'bob', 'дима']) expect(usernameSkeleton(distinct)).not.toBe(usernameSkeleton('alice'));
});

describeApi('usernames: one name in every spelling', (ctx) => {
  it('refuses a name that differs from an existing one only by case or width, and writes nothing', async () => {
    const name = freshName('Alice');
    await register(ctx, name).expect(201);
    const before = await userCount(ctx);
    for (const spelling of [name.toLowerCase(), name.toUpperCase(), fullwidth(name)]) {
      const res = await register(ctx, spelling).expect(400);
      expect(res.body, spelling).toEqual({ username: ['A user with that username already exists.'] });
    }
    expect(await userCount(ctx)).toBe(before);
  });

  it('refuses a name whose confusable skeleton is an existing one’s', async () => {
    const name = freshName('alicao');
    await register(ctx, name).expect(201);
    const before = await userCount(ctx);
    for (const lookAlike of [cyrillic(name), name.replace('l', 'I')]) {
      const res = await register(ctx, lookAlike).expect(400);
      expect(res.body, lookAlike).toEqual({ username: ['This username looks too much like an existing one.'] });
    }
    expect(await userCount(ctx)).toBe(before);
    // A name that only resembles it in part is its own.
    await register(ctx, `${name}x`).expect(201);
  });

  it('logs in with any spelling that folds to the name, and shows the name as it was registered', async () => {
    const name = freshName('Bob');
    await register(ctx, name).expect(201);
    for (const spelling of [name, name.toLowerCase(), name.toUpperCase(), fullwidth(name)]) {
      const token = (await login(ctx, spelling).expect(200)).body.auth_token;
      const me = await ctx.http.get('/auth/users/me/').set('Authorization', `Token ${token}`).expect(200);
      expect(me.body.username, spelling).toBe(name);
    }
    await login(ctx, cyrillic(name.toLowerCase().replace('b', 'o'))).expect(400);
  });

  it('counts failed logins per name, whatever the spelling', async () => {
    const name = freshName('carol');
    await register(ctx, name).expect(201);
    const spellings = [name, name.toUpperCase(), fullwidth(name)];
    for (let attempt = 0; attempt < LOGIN_LIMITS.perUsername; attempt++) {
      await login(ctx, spellings[attempt % spellings.length], 'wrong password').expect(400);
    }
    await login(ctx, name).expect(429);
    await login(ctx, fullwidth(name)).expect(429);
  });
});

describeApi('usernames from before the keys', (ctx) => {
  /** Users as the migration finds them: names without keys, as many as were stored before it. */
  async function insertUnkeyed(usernames: string[]): Promise<void> {
    const { db, t } = ctx.database.store;
    for (const username of usernames) {
      await db.insert(t.users).values({ username, passwordHash: CHEAP_HASH, firstName: '', lastName: '', isAdmin: false, createdAt: new Date() });
    }
  }

  it('fills their keys, oldest first, and reports the later of two names that clash without merging them', async () => {
    const name = freshName('dave');
    const [upper, lookAlike] = [name.toUpperCase(), cyrillic(name)];
    await insertUnkeyed([name, upper, lookAlike]);

    const clashes = await fillUsernameKeys(ctx.database.store);
    expect(clashes).toEqual([
      { username: upper, clashesWith: name, by: 'key' },
      { username: upper, clashesWith: name, by: 'skeleton' },
      { username: lookAlike, clashesWith: name, by: 'skeleton' },
    ]);
    // Reported again at every start until an operator renames one; nothing changed in between.
    expect(await fillUsernameKeys(ctx.database.store)).toEqual(clashes);

    // Three accounts still; the oldest owns the name in every spelling, the others their exact one.
    const whoLogsIn = async (spelling: string) => {
      const token = (await login(ctx, spelling).expect(200)).body.auth_token;
      return (await ctx.http.get('/auth/users/me/').set('Authorization', `Token ${token}`).expect(200)).body.username;
    };
    expect(await whoLogsIn(name)).toBe(name);
    expect(await whoLogsIn(fullwidth(name))).toBe(name);
    expect(await whoLogsIn(upper)).toBe(upper);
    expect(await whoLogsIn(lookAlike)).toBe(lookAlike);
    await register(ctx, name.replace('d', 'D')).expect(400);
  });

  it('gives keys to names that clash with nobody, and reports nothing for them', async () => {
    const name = freshName('erin');
    await insertUnkeyed([name]);
    expect(await fillUsernameKeys(ctx.database.store)).not.toContainEqual(expect.objectContaining({ username: name }));
    await login(ctx, name.toUpperCase()).expect(200);
    await insertCheapUsers(ctx.database.store, [freshName('frank')]);
  });
});

import { eq, sql, type SQL } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { inRollout, rolloutBucket } from '../server/feature-flags/rollout';
import { describeApi, type TestUser } from './support/api';
import { sleep } from './support/waiting';

const FLAGS = '/api/feature-flags/flags/';
const MINE = '/api/feature-flags/user-features/my_features/';
const check = (key: string) => `/api/feature-flags/user-features/${key}/check/`;
const logAccess = (key: string) => `/api/feature-flags/user-features/${key}/log-access/`;

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describeApi('feature flags', (ctx) => {
  let admin: TestUser;
  let ann: TestUser;

  beforeAll(async () => {
    [admin, ann] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser()]);
  });

  let flagCount = 0;
  /** A flag with a key of its own, made through the admin API. */
  async function flag(settings: { is_enabled?: boolean; rollout_percentage?: number; description?: string } = {}) {
    const key = `flag_${process.pid}_${++flagCount}`;
    const res = await ctx.http.post(FLAGS).set(admin.auth).send({ key, name: `Flag ${flagCount}`, ...settings }).expect(201);
    return res.body as { id: number; key: string; name: string; is_enabled: boolean; rollout_percentage: number };
  }
  const grant = (key: string, ...users: TestUser[]) =>
    ctx.http.post(`${FLAGS}${key}/users/`).set(admin.auth).send({ user_ids: users.map((user) => user.id) }).expect(200);

  it('creates a flag: 201 with every field, the key made from the name when left out; a taken or malformed key is a 400', async () => {
    const res = await ctx.http.post(FLAGS).set(admin.auth).send({ name: `New UI Design ${process.pid}`, description: 'The new interface' }).expect(201);
    expect(res.body).toEqual({
      id: expect.any(Number),
      key: `new_ui_design_${process.pid}`,
      name: `New UI Design ${process.pid}`,
      description: 'The new interface',
      is_enabled: false,
      rollout_percentage: 100,
      user_count: 0,
      created_at: expect.stringMatching(TIMESTAMP),
      updated_at: res.body.created_at,
    });
    const again = await ctx.http.post(FLAGS).set(admin.auth).send({ name: `New UI Design ${process.pid}` }).expect(400);
    expect(again.body).toEqual({ key: ['A feature flag with this key already exists.'] });
    // The pattern's bounds: 64 characters, a digit first, and _ . - after the first.
    for (const key of [`${process.pid}`.padEnd(64, 'x'), `${process.pid}.a-b_c`]) {
      expect((await ctx.http.post(FLAGS).set(admin.auth).send({ key, name: 'x' }).expect(201)).body.key).toBe(key);
    }
    for (const key of ['Upper', '_leading', '.leading', '-leading', 'has space', 'x'.repeat(65), '']) {
      const bad = await ctx.http.post(FLAGS).set(admin.auth).send({ key, name: 'x' }).expect(400);
      expect(Object.keys(bad.body)).toEqual(['key']);
    }
    for (const [field, value] of [['rollout_percentage', 101], ['rollout_percentage', -1], ['rollout_percentage', 50.5], ['is_enabled', 'yes'], ['name', '']] as const) {
      const bad = await ctx.http.post(FLAGS).set(admin.auth).send({ name: 'x', [field]: value }).expect(400);
      expect(Object.keys(bad.body)).toEqual([field]);
    }
  });

  it('makes the key of an accented or compatibility-form name from its plain letters', async () => {
    for (const [name, key] of [
      [`Über Naïve ${process.pid}`, `uber_naive_${process.pid}`],
      [`Ｆｕｌｌ ㎒ ${process.pid}`, `full_mhz_${process.pid}`],
    ]) {
      expect((await ctx.http.post(FLAGS).set(admin.auth).send({ name }).expect(201)).body.key).toBe(key);
    }
  });

  it('gets, changes and deletes a flag by key; an unknown key is a 404', async () => {
    const created = await flag();
    const got = await ctx.http.get(`${FLAGS}${created.key}/`).set(admin.auth).expect(200);
    expect(got.body).toEqual({ ...created, user_count: 0 });
    const changed = await ctx.http.patch(`${FLAGS}${created.key}/`).set(admin.auth).send({ is_enabled: true, rollout_percentage: 30, name: 'Renamed' }).expect(200);
    expect(changed.body).toMatchObject({ key: created.key, is_enabled: true, rollout_percentage: 30, name: 'Renamed' });
    expect(Date.parse(changed.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(changed.body.created_at));
    await ctx.http.patch(`${FLAGS}${created.key}/`).set(admin.auth).send({ key: 'other' }).expect(400);
    await ctx.http.delete(`${FLAGS}${created.key}/`).set(admin.auth).expect(204);
    for (const request of [
      ctx.http.get(`${FLAGS}${created.key}/`),
      ctx.http.patch(`${FLAGS}${created.key}/`).send({ is_enabled: false }),
      ctx.http.delete(`${FLAGS}${created.key}/`),
      ctx.http.get(`${FLAGS}${created.key}/users/`),
      ctx.http.post(`${FLAGS}${created.key}/users/`).send({ user_ids: [ann.id] }),
    ]) {
      expect((await request.set(admin.auth)).status).toBe(404);
    }
  });

  it('lists flags oldest first in pages, the next one in the Link header', async () => {
    const made = [await flag(), await flag(), await flag()];
    const keys: string[] = [];
    let url = `${FLAGS}?limit=2`;
    for (;;) {
      const res = await ctx.http.get(url).set(admin.auth).expect(200);
      keys.push(...res.body.map((item: { key: string; id: number }) => `${String(item.id).padStart(9, '0')} ${item.key}`));
      const next = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '');
      if (!next) break;
      url = next[1];
    }
    expect(keys).toEqual([...keys].sort());
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.map((entry) => entry.split(' ')[1])).toEqual(expect.arrayContaining(made.map((item) => item.key)));
    await ctx.http.get(`${FLAGS}?cursor=garbage`).set(admin.auth).expect(400);
  });

  it('refuses every admin route to a regular user with 403, before looking at the body', async () => {
    const existing = await flag();
    const requests = [
      ctx.http.get(FLAGS),
      ctx.http.post(FLAGS).send({ nonsense: true }),
      ctx.http.get(`${FLAGS}${existing.key}/`),
      ctx.http.patch(`${FLAGS}${existing.key}/`).send({ rollout_percentage: 'lots' }),
      ctx.http.delete(`${FLAGS}${existing.key}/`),
      ctx.http.get(`${FLAGS}${existing.key}/users/`),
      ctx.http.post(`${FLAGS}${existing.key}/users/`).send({ user_ids: 'me' }),
      ctx.http.delete(`${FLAGS}${existing.key}/users/${ann.id}/`),
      ctx.http.get('/api/feature-flags/audit/'),
    ];
    for (const request of requests) {
      const res = await request.set(ann.auth);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    expect((await ctx.http.get(`${FLAGS}${existing.key}/`).set(admin.auth).expect(200)).body).toEqual({ ...existing, user_count: 0 });
  });

  it('answers the access matrix: admin or regular × switch on or off × access or not × rollout 0, 50, 100', async () => {
    const bob = await ctx.createUser();
    for (const is_enabled of [true, false]) {
      for (const rollout_percentage of [0, 50, 100]) {
        const item = await flag({ is_enabled, rollout_percentage, description: 'secret plan' });
        await grant(item.key, ann, admin);
        for (const [user, access] of [
          [ann, true],
          [bob, false],
          [admin, true],
        ] as const) {
          const res = await ctx.http.get(check(item.key)).set(user.auth).expect(200);
          const rolledIn = inRollout({ key: item.key, rolloutPercentage: rollout_percentage }, user.id);
          expect(res.body, `${user === admin ? 'admin' : 'regular'} ${JSON.stringify({ is_enabled, rollout_percentage, access })}`).toEqual({
            feature_key: item.key,
            feature_name: item.name,
            is_enabled: is_enabled && access && rolledIn,
            feature_enabled_globally: is_enabled,
            user_has_access: access,
          });
          expect(JSON.stringify(res.body)).not.toContain('secret plan');
        }
        // At 0 nobody is in, at 100 everybody with access.
        if (rollout_percentage === 0) expect((await ctx.http.get(check(item.key)).set(ann.auth)).body.is_enabled).toBe(false);
        if (rollout_percentage === 100) expect((await ctx.http.get(check(item.key)).set(ann.auth)).body.is_enabled).toBe(is_enabled);
      }
    }
  });

  it('lists a regular user’s granted, enabled flags split by the rollout; an admin’s every flag split by the switch', async () => {
    const user = await ctx.createUser();
    const on = await flag({ is_enabled: true, rollout_percentage: 100 });
    const off = await flag({ is_enabled: false });
    const rolledOut = await flag({ is_enabled: true, rollout_percentage: 0 });
    const notGranted = await flag({ is_enabled: true });
    for (const item of [on, off, rolledOut]) await grant(item.key, user);

    const mine = (await ctx.http.get(MINE).set(user.auth).expect(200)).body;
    expect(mine.enabled_features.map((item: { key: string }) => item.key)).toEqual([on.key]);
    expect(mine.disabled_features.map((item: { key: string }) => item.key)).toEqual([rolledOut.key]);
    expect(mine.total_features).toBe(2);
    expect(mine.enabled_features[0]).toEqual({ ...on, user_count: 1 });

    const all = (await ctx.http.get(MINE).set(admin.auth).expect(200)).body;
    const keysOf = (items: Array<{ key: string }>) => items.map((item) => item.key);
    expect(keysOf(all.enabled_features)).toEqual(expect.arrayContaining([on.key, rolledOut.key, notGranted.key]));
    expect(keysOf(all.disabled_features)).toContain(off.key);
    expect(all.enabled_features.every((item: { is_enabled: boolean }) => item.is_enabled)).toBe(true);
    expect(all.disabled_features.every((item: { is_enabled: boolean }) => !item.is_enabled)).toBe(true);
    expect(all.total_features).toBe(all.enabled_features.length + all.disabled_features.length);
  });

  it('answers an unknown flag with SPEC’s 404 bodies', async () => {
    const res = await ctx.http.get(check('unknown_feature')).set(ann.auth).expect(404);
    expect(res.body).toEqual({
      feature_key: 'unknown_feature',
      feature_name: null,
      is_enabled: false,
      feature_enabled_globally: false,
      user_has_access: false,
      error: 'Feature flag not found',
    });
    expect((await ctx.http.post(logAccess('unknown_feature')).set(ann.auth).expect(404)).body).toEqual({ error: 'Feature flag not found' });
  });

  it('records one access event per log-access call, with the address and user agent; 50 at once record 50', async () => {
    const item = await flag({ is_enabled: true });
    const before = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => ctx.http.post(logAccess(item.key)).set(ann.auth).set('User-Agent', 'flag-test/1.0')),
    );
    const after = Date.now();
    expect(answers.map((res) => res.status)).toEqual(Array(50).fill(200));
    expect(answers[0].body).toEqual({ message: 'Feature access logged successfully', feature_key: item.key, feature_name: item.name });
    const { db, t } = ctx.database.store;
    const events = await db.select().from(t.featureAccessEvents);
    const mine = events.filter((event) => event.flagId === item.id);
    expect(mine).toHaveLength(50);
    expect(mine.every((event) => event.userId === ann.id && event.userAgent === 'flag-test/1.0' && event.ip !== null)).toBe(true);
    // …and the time of the call.
    expect(mine.every((event) => event.accessedAt.getTime() >= before - 1000 && event.accessedAt.getTime() <= after + 1000)).toBe(true);
  });

  it('logs accesses past the 2,147,483,647th: event ids are 64-bit', async () => {
    const item = await flag({ is_enabled: true });
    const { db, t } = ctx.database.store;
    const past32Bits = 3_000_000_000;
    if (ctx.database.dialect === 'postgres') await db.execute(sql.raw(`alter table feature_access_events alter column id restart with ${past32Bits}`));
    else {
      const run = (query: SQL) => (db as unknown as { run(query: SQL): Promise<unknown> }).run(query);
      await run(sql`delete from sqlite_sequence where name = 'feature_access_events'`);
      await run(sql.raw(`insert into sqlite_sequence (name, seq) values ('feature_access_events', ${past32Bits - 1})`));
    }
    await ctx.http.post(logAccess(item.key)).set(ann.auth).expect(200);
    const [event] = await db.select().from(t.featureAccessEvents).where(eq(t.featureAccessEvents.flagId, item.id));
    expect(event.id).toBe(past32Bits);
    expect((await ctx.http.get(`${FLAGS}${item.key}/stats/`).set(admin.auth).expect(200)).body).toMatchObject({ total_accesses: 1 });
  });

  it('grants, lists and revokes explicit access; unknown users are a 400, revoking what was not granted a 404', async () => {
    const item = await flag({ is_enabled: true });
    const [bob, cat] = [await ctx.createUser(), await ctx.createUser()];
    const first = await ctx.http.post(`${FLAGS}${item.key}/users/`).set(admin.auth).send({ user_ids: [bob.id, cat.id, bob.id] }).expect(200);
    expect(first.body).toEqual({ granted: [bob.id, cat.id].sort((a, b) => a - b), user_count: 2 });
    const again = await ctx.http.post(`${FLAGS}${item.key}/users/`).set(admin.auth).send({ user_ids: [bob.id] }).expect(200);
    expect(again.body).toEqual({ granted: [], user_count: 2 });
    const unknown = await ctx.http.post(`${FLAGS}${item.key}/users/`).set(admin.auth).send({ user_ids: [bob.id, 2_000_000_000] }).expect(400);
    expect(unknown.body).toEqual({ user_ids: [expect.stringContaining('2000000000')] });

    const listed = (await ctx.http.get(`${FLAGS}${item.key}/users/`).set(admin.auth).expect(200)).body;
    expect(listed.map((user: { username: string }) => user.username)).toEqual([bob, cat].sort((a, b) => a.id - b.id).map((user) => user.username));
    expect(listed[0]).toEqual({ id: expect.any(Number), username: expect.any(String), first_name: expect.any(String), last_name: '', granted_at: expect.stringMatching(TIMESTAMP) });
    // Paged like the other lists: one a page, the next in the Link header, by user id.
    const paged: string[] = [];
    let url = `${FLAGS}${item.key}/users/?limit=1`;
    for (;;) {
      const res = await ctx.http.get(url).set(admin.auth).expect(200);
      expect(res.body).toHaveLength(1);
      paged.push(...res.body.map((user: { username: string }) => user.username));
      const next = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '');
      if (!next) break;
      url = next[1];
    }
    expect(paged).toEqual(listed.map((user: { username: string }) => user.username));
    expect((await ctx.http.get(check(item.key)).set(bob.auth)).body.user_has_access).toBe(true);

    await ctx.http.delete(`${FLAGS}${item.key}/users/${bob.id}/`).set(admin.auth).expect(204);
    await ctx.http.delete(`${FLAGS}${item.key}/users/${bob.id}/`).set(admin.auth).expect(404);
    expect((await ctx.http.get(check(item.key)).set(bob.auth)).body).toMatchObject({ user_has_access: false, is_enabled: false });
    expect((await ctx.http.get(`${FLAGS}${item.key}/`).set(admin.auth)).body.user_count).toBe(1);
  });

  it('keeps an audit entry for every change: who, when, what before and after; by flag, newest first, in pages', async () => {
    const item = await flag();
    await ctx.http.patch(`${FLAGS}${item.key}/`).set(admin.auth).send({ is_enabled: true }).expect(200);
    await grant(item.key, ann);
    await ctx.http.delete(`${FLAGS}${item.key}/users/${ann.id}/`).set(admin.auth).expect(204);
    await ctx.http.delete(`${FLAGS}${item.key}/`).set(admin.auth).expect(204);
    // A refused change leaves no entry.
    await ctx.http.post(FLAGS).set(admin.auth).send({ key: item.key.replace('flag', 'other'), name: '' }).expect(400);

    const entries: Array<Record<string, any>> = [];
    let url = `/api/feature-flags/audit/?flag=${item.key}&limit=2`;
    for (;;) {
      const res = await ctx.http.get(url).set(admin.auth).expect(200);
      entries.push(...res.body);
      const next = /<([^>]+)>; rel="next"/.exec(res.headers.link ?? '');
      if (!next) break;
      url = next[1];
    }
    expect(entries.map((entry) => entry.action)).toEqual(['delete', 'revoke', 'grant', 'update', 'create']);
    expect(entries.every((entry) => entry.actor === admin.username && entry.flag_key === item.key && TIMESTAMP.test(entry.created_at))).toBe(true);
    const [deleted, revoked, granted, updated, created] = entries;
    expect(created).toMatchObject({ before: null, after: { key: item.key, is_enabled: false, rollout_percentage: 100 } });
    expect(updated).toMatchObject({ before: { is_enabled: false }, after: { is_enabled: true } });
    expect(granted).toMatchObject({ before: null, after: { user_ids: [ann.id] } });
    expect(revoked).toMatchObject({ before: { user_id: ann.id }, after: null });
    expect(deleted).toMatchObject({ before: { key: item.key, is_enabled: true }, after: null });
    await ctx.http.get('/api/feature-flags/audit/?flag=NOT_A_KEY').set(admin.auth).expect(400);
  });

  it('chains the audit under concurrent changes: each entry’s before is the one before it’s after', async () => {
    const item = await flag();
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => ctx.http.patch(`${FLAGS}${item.key}/`).set(admin.auth).send({ name: `Name ${i}` })));
    expect(answers.map((res) => res.status)).toEqual(Array(10).fill(200));
    const entries = (await ctx.http.get(`/api/feature-flags/audit/?flag=${item.key}&limit=100`).set(admin.auth).expect(200)).body.reverse();
    expect(entries).toHaveLength(11);
    for (let i = 1; i < entries.length; i++) expect(entries[i].before, `entry ${i}`).toEqual(entries[i - 1].after);
  });

  it('answers a grant or a change racing the flag’s deletion with 200 or 404, never a 500', async () => {
    for (let i = 0; i < 10; i++) {
      const [granted, changed] = [await flag(), await flag()];
      const answers = await Promise.all([
        ctx.http.post(`${FLAGS}${granted.key}/users/`).set(admin.auth).send({ user_ids: [ann.id] }),
        ctx.http.delete(`${FLAGS}${granted.key}/`).set(admin.auth),
        ctx.http.patch(`${FLAGS}${changed.key}/`).set(admin.auth).send({ name: 'Renamed' }),
        ctx.http.delete(`${FLAGS}${changed.key}/`).set(admin.auth),
      ]);
      expect(answers.map((res) => res.status)).toEqual([expect.toBeOneOf([200, 404]), 204, expect.toBeOneOf([200, 404]), 204]);
    }
  });

  it('answers the two user GETs with an ETag, 304 to If-None-Match while nothing changed, and the new answer once something did', async () => {
    const user = await ctx.createUser();
    const item = await flag({ is_enabled: true });
    await grant(item.key, user);
    for (const url of [MINE, check(item.key)]) {
      const first = await ctx.http.get(url).set(user.auth).expect(200);
      expect(first.headers.etag).toMatch(/^W\/".+"$/);
      const unchanged = await ctx.http.get(url).set(user.auth).set('If-None-Match', first.headers.etag).expect(304);
      expect(unchanged.text).toBe('');
      await ctx.http.delete(`${FLAGS}${item.key}/users/${user.id}/`).set(admin.auth).expect(204);
      const changed = await ctx.http.get(url).set(user.auth).set('If-None-Match', first.headers.etag).expect(200);
      expect(changed.headers.etag).not.toBe(first.headers.etag);
      await grant(item.key, user);
    }
  });

  it('counts accesses per UTC day and distinct users over the last days asked for', async () => {
    // Days are compared with the server's: not across a UTC midnight (a run that ends past it).
    const toMidnight = 86_400_000 - (Date.now() % 86_400_000);
    if (toMidnight < 15_000) await sleep(toMidnight + 100);
    const item = await flag({ is_enabled: true });
    const bob = await ctx.createUser();
    const { db, t } = ctx.database.store;
    const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000);
    // Logged through the API today; two days ago and 40 days ago written as they would have been.
    for (const user of [ann, ann, bob]) await ctx.http.post(logAccess(item.key)).set(user.auth).expect(200);
    await db.insert(t.featureAccessEvents).values([
      { flagId: item.id, userId: ann.id, accessedAt: daysAgo(2), ip: null, userAgent: null },
      { flagId: item.id, userId: ann.id, accessedAt: daysAgo(40), ip: null, userAgent: null },
    ]);
    const res = await ctx.http.get(`${FLAGS}${item.key}/stats/?days=7`).set(admin.auth).expect(200);
    expect(res.body).toMatchObject({ feature_key: item.key, days: 7, total_accesses: 4, distinct_users: 2 });
    expect(res.body.per_day).toHaveLength(7);
    expect(res.body.per_day.at(-1)).toEqual({ day: new Date().toISOString().slice(0, 10), accesses: 3, distinct_users: 2 });
    expect(res.body.per_day.at(-3)).toEqual({ day: daysAgo(2).toISOString().slice(0, 10), accesses: 1, distinct_users: 1 });
    expect(res.body.per_day.filter((day: { accesses: number }) => day.accesses === 0)).toHaveLength(5);
    const month = await ctx.http.get(`${FLAGS}${item.key}/stats/`).set(admin.auth).expect(200);
    expect(month.body).toMatchObject({ days: 30, total_accesses: 4 });
    expect((await ctx.http.get(`${FLAGS}${item.key}/stats/?days=365`).set(admin.auth).expect(200)).body.total_accesses).toBe(5);
    for (const days of ['0', '366', 'x', '1e1']) await ctx.http.get(`${FLAGS}${item.key}/stats/?days=${days}`).set(admin.auth).expect(400);
    await ctx.http.get(`${FLAGS}zz-none/stats/`).set(admin.auth).expect(404);
    await ctx.http.get(`${FLAGS}${item.key}/stats/`).set(ann.auth).expect(403);
  });

  it('answers 401 without a valid token on the user routes', async () => {
    for (const request of [ctx.http.get(MINE), ctx.http.get(check('x')), ctx.http.post(logAccess('x'))]) {
      expect((await request.set('Authorization', 'Token nope')).status).toBe(401);
    }
  });
});

/** MurmurHash3 x86 32-bit (seed 0) over the string's UTF-16 code units as bytes below 256, as Unleash's murmurhash3js hashes ASCII keys. */
function murmur3(text: string): number {
  const bytes = [...text].map((char) => char.charCodeAt(0) & 0xff);
  let h = 0;
  const blocks = bytes.length - (bytes.length % 4);
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const tail = bytes.length % 4;
  if (tail >= 3) k ^= bytes[blocks + 2] << 16;
  if (tail >= 2) k ^= bytes[blocks + 1] << 8;
  if (tail >= 1) {
    k ^= bytes[blocks];
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

describe('feature flag rollout', () => {
  it('buckets a user as Unleash does: MurmurHash3 (x86, 32 bit, seed 0) of "<key>:<user id>" modulo 100', () => {
    // The reference hash against the published test vectors first.
    expect(murmur3('')).toBe(0);
    expect(murmur3('hello')).toBe(0x248bfa47);
    expect(murmur3('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
    for (const key of ['checkout_v2', 'a', 'new.ui-2024', 'x'.repeat(64)]) {
      for (const id of [1, 2, 7, 99, 100, 12_345, 2_147_483_647]) {
        expect(rolloutBucket(key, id), `${key}:${id}`).toBe(murmur3(`${key}:${id}`) % 100);
      }
    }
  });

  it('puts each user in a stable bucket: the share of 10,000 users in lands within 2 points of the percentage, and raising it only adds users', () => {
    const users = Array.from({ length: 10_000 }, (_, i) => i + 1);
    let previous = new Set<number>();
    for (const percentage of [0, 1, 10, 25, 50, 75, 99, 100]) {
      const inside = new Set(users.filter((id) => inRollout({ key: 'checkout_v2', rolloutPercentage: percentage }, id)));
      expect(Math.abs((inside.size / users.length) * 100 - percentage), `${percentage} %`).toBeLessThanOrEqual(2);
      for (const id of previous) expect(inside.has(id), `user ${id} left at ${percentage} %`).toBe(true);
      previous = inside;
    }
    expect(previous.size).toBe(users.length);
    // Deterministic (the same bucket every time) and per flag (another key buckets users anew).
    expect(users.slice(0, 100).map((id) => rolloutBucket('checkout_v2', id))).toEqual(users.slice(0, 100).map((id) => rolloutBucket('checkout_v2', id)));
    const same = users.filter((id) => rolloutBucket('checkout_v2', id) === rolloutBucket('search_v3', id)).length;
    expect(same).toBeLessThan(300);
    expect(rolloutBucket('checkout_v2', 1)).toBe(rolloutBucket('checkout_v2', 1));
  });
});

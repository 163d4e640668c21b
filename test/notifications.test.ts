import { randomUUID } from 'node:crypto';
import { and, count, eq } from 'drizzle-orm';
import { pino } from 'pino';
import request, { type Response } from 'supertest';
import { beforeAll, expect, it } from 'vitest';
import type { Store } from '../db/open-database';
import { createApp, createServices } from '../server/app';
import { LEGACY_CLAIM_ABANDONED_AFTER_MS } from '../server/idempotency/idempotency.service';
import type { NotificationRow, NotificationType } from '../server/notifications/notifications.service';
import { createUser, describeApi, type ApiContext, type TestUser } from './support/api';
import { dyingDatabase } from './support/dying-database';
import { pastCreation, pastTime } from './support/waiting';

interface Notification {
  id: string;
  type: string;
  message: string;
  created_at: string;
  delivered: boolean;
  delivered_at: string | null;
  read: boolean;
}

interface Summary {
  id: string;
  message: string;
  created_at: string;
  type: string;
}

interface DeliveryStatus {
  total: number;
  delivered: number;
  undelivered: number;
  delivery_rate: number;
  recent_undelivered: Summary[];
  undelivered_notifications: Summary[];
}

const ISO_WITH_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TYPES: NotificationType[] = ['INFO', 'WARNING', 'ERROR', 'SUCCESS', 'CRITICAL', 'OTHER'];
const NOT_FOUND = { detail: expect.any(String) };
const FIELD_ERROR = [expect.any(String)];
const NEXT_LINK = /^<([^>]+)>; rel="next"$/;

const b64 = (value: string) => Buffer.from(value).toString('base64url');
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describeApi('notifications', (ctx) => {
  // ann and bob: the everyday pair (bob is the intruder), for tests whose figures no other test's
  // notifications can change; a test that counts or pages gets a user of its own (fresh()), so that
  // no test depends on which ran before it. admin and admin2 send.
  let ann: TestUser;
  let bob: TestUser;
  let tester: TestUser;
  let rcpt1: TestUser;
  let rcpt2: TestUser;
  let admin: TestUser;
  let admin2: TestUser;
  let pool: TestUser[] = [];

  beforeAll(async () => {
    [ann, bob, tester, rcpt1, rcpt2, ...pool] = await Promise.all(Array.from({ length: 21 }, () => ctx.createUser()));
    [admin, admin2] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser({ admin: true })]);
  });

  /** A user of the test's own, with no notifications yet. */
  const fresh = () => {
    const user = pool.shift();
    if (!user) throw new Error('create more users in beforeAll');
    return user;
  };

  const { notify, notifyMany, insertRows, deliver, list, listIds, getOne, status, unread, nextLink, walk, rowsInTable, toSummary, create, withMessage } =
    notificationHelpers(ctx);

  // --- the notification object ---------------------------------------------------------------

  it('serializes a notification with id, type, message, created_at, delivered, delivered_at and read', async () => {
    const before = Date.now();
    const row = await notify(ann, 'Your task has been completed', 'SUCCESS');
    const after = Date.now();

    const one = await getOne(ann, row.id);
    expect(one).toEqual({
      id: row.id,
      type: 'SUCCESS',
      message: 'Your task has been completed',
      created_at: expect.stringMatching(ISO_WITH_MS),
      delivered: false,
      delivered_at: null,
      read: false,
    });
    expect(Object.keys(one).sort()).toEqual(['created_at', 'delivered', 'delivered_at', 'id', 'message', 'read', 'type']);
    expect(one.id).toMatch(UUID);
    expect(Date.parse(one.created_at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(one.created_at)).toBeLessThanOrEqual(after);

    // The list serializes the same object.
    expect((await list(ann)).find((n) => n.id === row.id)).toEqual(one);

    const ackAt = Date.now();
    const acked = await ctx.http.post(`/api/notifications/${row.id}/acknowledge/`).set(ann.auth).expect(200);
    expect(acked.body.notification.delivered).toBe(true);
    expect(acked.body.notification.delivered_at).toMatch(ISO_WITH_MS);
    expect(Date.parse(acked.body.notification.delivered_at)).toBeGreaterThanOrEqual(ackAt);
    expect(Date.parse(acked.body.notification.delivered_at)).toBeLessThanOrEqual(Date.now());
    expect(await getOne(ann, row.id)).toEqual(acked.body.notification);
  });

  // --- GET /api/notifications/ ---------------------------------------------------------------

  it('lists newest first and filters by delivered and read, alone and combined', async () => {
    const filt = fresh();
    // a: undelivered unread, b: delivered unread, c: undelivered read, d: delivered read.
    const [a, b, c, d] = await notifyMany(filt, 4, 'filter');
    await deliver(filt, [b.id, d.id]);
    for (const row of [c, d]) await ctx.http.post(`/api/notifications/${row.id}/mark_read/`).set(filt.auth).expect(200);

    const all = await list(filt);
    expect(all.map((n) => n.message)).toEqual(['filter 3', 'filter 2', 'filter 1', 'filter 0']);
    expect(all.map((n) => [n.delivered, n.read])).toEqual([
      [true, true],
      [false, true],
      [true, false],
      [false, false],
    ]);
    const createdAts = all.map((n) => Date.parse(n.created_at));
    expect([...createdAts].sort((x, y) => y - x)).toEqual(createdAts);

    expect(await listIds(filt, '?delivered=true')).toEqual([d.id, b.id]);
    expect(await listIds(filt, '?delivered=false')).toEqual([c.id, a.id]);
    expect(await listIds(filt, '?read=true')).toEqual([d.id, c.id]);
    expect(await listIds(filt, '?read=false')).toEqual([b.id, a.id]);
    expect(await listIds(filt, '?delivered=true&read=true')).toEqual([d.id]);
    expect(await listIds(filt, '?delivered=true&read=false')).toEqual([b.id]);
    expect(await listIds(filt, '?delivered=false&read=true')).toEqual([c.id]);
    expect(await listIds(filt, '?read=false&delivered=false')).toEqual([a.id]);
  });

  it('rejects filter values other than true and false, and unknown query parameters', async () => {
    const filt = fresh();
    for (const field of ['delivered', 'read']) {
      for (const value of ['yes', '1', '0', 'TRUE', 'False', '']) {
        const res = await ctx.http.get(`/api/notifications/?${field}=${value}`).set(filt.auth).expect(400);
        expect(res.body).toEqual({ [field]: FIELD_ERROR });
      }
      const twice = await ctx.http.get(`/api/notifications/?${field}=true&${field}=false`).set(filt.auth).expect(400);
      expect(Object.keys(twice.body)).toEqual([field]);
    }
    for (const param of ['foo=1', 'page=2', 'ordering=created_at', 'offset=0']) {
      const res = await ctx.http.get(`/api/notifications/?${param}`).set(filt.auth).expect(400);
      expect(res.body).toEqual({ [param.split('=')[0]]: FIELD_ERROR });
    }
  });

  it('pages 50 by default and at most 100 a page', async () => {
    const many = fresh();
    const base = Date.now() - 1_000_000;
    const rows = await insertRows(
      many,
      Array.from({ length: 101 }, (_, i) => new Date(base + i * 1000)),
      'many',
    );
    const newestFirst = [...rows].reverse().map((row) => row.id);

    const first = await ctx.http.get('/api/notifications/').set(many.auth).expect(200);
    expect(first.body.map((n: Notification) => n.id)).toEqual(newestFirst.slice(0, 50));
    expect(nextLink(first)).not.toBeNull();
    const byDefault = await walk(many, '/api/notifications/');
    expect(byDefault.pages.map((page) => page.length)).toEqual([50, 50, 1]);
    expect(byDefault.ids).toEqual(newestFirst);

    const hundred = await ctx.http.get('/api/notifications/?limit=100').set(many.auth).expect(200);
    expect(hundred.body.map((n: Notification) => n.id)).toEqual(newestFirst.slice(0, 100));
    expect(nextLink(hundred)).toMatch(/limit=100/);

    const one = await ctx.http.get('/api/notifications/?limit=1').set(many.auth).expect(200);
    expect(one.body.map((n: Notification) => n.id)).toEqual([newestFirst[0]]);

    for (const limit of ['101', '0', '-1', '1.5', 'abc', '', '1e3']) {
      const res = await ctx.http.get(`/api/notifications/?limit=${limit}`).set(many.auth).expect(400);
      expect(res.body).toEqual({ limit: FIELD_ERROR });
    }
  });

  it('walks every page through the Link header: no duplicates, no gaps, newest first', async () => {
    const pager = fresh();
    const rows = await notifyMany(pager, 7, 'page');
    const newestFirst = [...rows].reverse().map((row) => row.id);

    const { pages, links, ids } = await walk(pager, '/api/notifications/?limit=3');
    expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
    expect(ids).toEqual(newestFirst);
    expect(new Set(ids).size).toBe(7);
    expect(links).toHaveLength(2);
    for (const link of links) {
      expect(link).toMatch(/^\/api\/notifications\/\?/);
      const params = new URL(link, 'http://x').searchParams;
      expect(params.get('limit')).toBe('3');
      expect(params.get('cursor')).toEqual(expect.any(String));
    }
    const createdAts = pages.flat().map((n) => Date.parse(n.created_at));
    expect([...createdAts].sort((x, y) => y - x)).toEqual(createdAts);

    // A page that holds exactly the rest has no Link; one short of it has.
    const exact = await ctx.http.get('/api/notifications/?limit=7').set(pager.auth).expect(200);
    expect(exact.body).toHaveLength(7);
    expect(exact.headers.link).toBeUndefined();
    expect((await walk(pager, '/api/notifications/?limit=6')).pages.map((page) => page.length)).toEqual([6, 1]);
    expect((await walk(pager, '/api/notifications/?limit=1')).ids).toEqual(newestFirst);
  });

  it('pages correctly through notifications that share a created_at', async () => {
    const ties = fresh();
    const at = new Date(Date.now() - 5000);
    const rows = await insertRows(ties, [at, at, at, at, at, new Date(at.getTime() + 1), new Date(at.getTime() - 1)], 'tie');
    const tied = rows.slice(0, 5).sort(byId).reverse();
    const expected = [rows[5].id, ...tied.map((row) => row.id), rows[6].id];

    for (const limit of [1, 2, 3, 4]) {
      const { ids } = await walk(ties, `/api/notifications/?limit=${limit}`);
      expect(ids).toEqual(expected);
    }
  });

  it('keeps the filters in the Link header', async () => {
    const pager = fresh();
    const earlier = await notifyMany(pager, 7, 'earlier');
    const rows = await notifyMany(pager, 6, 'filtered page');
    await deliver(pager, [rows[0].id, rows[2].id, rows[4].id]);
    await ctx.http.post(`/api/notifications/${rows[5].id}/mark_read/`).set(pager.auth).expect(200);
    const undeliveredNewestFirst = [rows[5], rows[3], rows[1]].map((row) => row.id);
    const previous = [...earlier].reverse().map((row) => row.id);

    const { pages, links, ids } = await walk(pager, '/api/notifications/?delivered=false&limit=2');
    expect(ids).toEqual([...undeliveredNewestFirst, ...previous]);
    expect(pages.flat().every((n) => !n.delivered)).toBe(true);
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) {
      const params = new URL(link, 'http://x').searchParams;
      expect(params.get('delivered')).toBe('false');
      expect(params.get('limit')).toBe('2');
    }

    const combined = await walk(pager, '/api/notifications/?read=false&delivered=true&limit=1');
    expect(combined.ids).toEqual([rows[4].id, rows[2].id, rows[0].id]);
    for (const link of combined.links) {
      const params = new URL(link, 'http://x').searchParams;
      expect([params.get('read'), params.get('delivered'), params.get('limit')]).toEqual(['false', 'true', '1']);
    }
  });

  it('answers a tampered cursor with 400 {"cursor": [...]}, never 500', async () => {
    const pager = fresh();
    await notifyMany(pager, 3, 'cursor');
    const cursors = [
      'garbage',
      '!!!***',
      'x'.repeat(150),
      b64('not json'),
      b64('{"foo": 1}'),
      b64('null'),
      b64('[1, 2]'),
      b64('"text"'),
      b64('42'),
      b64(JSON.stringify({ at: Date.now() })),
      b64(JSON.stringify({ id: randomUUID() })),
      b64(JSON.stringify({ at: Date.now(), id: 'not-a-uuid' })),
      b64(JSON.stringify({ at: Date.now(), id: "' or 1=1 --" })),
      b64(JSON.stringify({ at: Date.now(), id: 42 })),
      b64(JSON.stringify({ at: 'yesterday', id: randomUUID() })),
      b64(JSON.stringify({ at: -1, id: randomUUID() })),
      b64(JSON.stringify({ at: 1.5, id: randomUUID() })),
      // Past 9999-12-31: a Date holds it, Postgres does not (its year is written +010000).
      b64(JSON.stringify({ at: Date.UTC(10000, 0, 1), id: randomUUID() })),
      b64(JSON.stringify({ at: 8.64e15, id: randomUUID() })),
      b64(JSON.stringify({ at: 1e16, id: randomUUID() })),
      b64(JSON.stringify({ at: 1e300, id: randomUUID() })),
      b64(JSON.stringify({ at: Date.now(), id: randomUUID(), extra: true })),
      'a'.repeat(201),
    ];
    for (const cursor of cursors) {
      const res = await ctx.http
        .get(`/api/notifications/?cursor=${encodeURIComponent(cursor)}`)
        .set(pager.auth);
      expect({ cursor, status: res.status }).toEqual({ cursor, status: 400 });
      expect(res.body).toEqual({ cursor: FIELD_ERROR });
    }
    const twice = await ctx.http.get('/api/notifications/?cursor=a&cursor=b').set(pager.auth).expect(400);
    expect(twice.body).toEqual({ cursor: FIELD_ERROR });
    // An empty cursor is no cursor: the first page.
    const blank = await ctx.http.get('/api/notifications/?cursor=&limit=2').set(pager.auth).expect(200);
    expect(blank.body).toHaveLength(2);
    expect(blank.body.map((n: Notification) => n.id)).toEqual((await listIds(pager)).slice(0, 2));
  });

  // --- GET /api/notifications/{id}/ ----------------------------------------------------------

  it('gets one notification by id; 404 for another user, an unknown or a malformed id', async () => {
    const row = await notify(ann, 'details');
    const one = await getOne(ann, row.id);
    expect(one).toMatchObject({ id: row.id, message: 'details', type: 'INFO', delivered: false, read: false });

    const bobs = await notify(bob, 'bob only');
    for (const id of [bobs.id, randomUUID(), '00000000-0000-0000-0000-000000000000', 'abc', '123', `${row.id}x`, row.id.slice(0, -1)]) {
      const res = await ctx.http.get(`/api/notifications/${id}/`).set(ann.auth).expect(404);
      expect(res.body).toEqual(NOT_FOUND);
    }
    await ctx.http.get(`/api/notifications/${row.id}/`).set(bob.auth).expect(404);
  });

  it('treats an id the same way on every dialect whatever its letter case', async () => {
    const row = await notify(ann, 'case');
    const upper = row.id.toUpperCase();
    const one = await getOne(ann, upper);
    expect(one.id).toBe(row.id);
    const read = await ctx.http.post(`/api/notifications/${upper}/mark_read/`).set(ann.auth).expect(200);
    expect(read.body.notification).toMatchObject({ id: row.id, read: true });
    const retried = await ctx.http
      .post('/api/notifications/delivery-status/')
      .set(ann.auth)
      .send({ notification_ids: [upper] })
      .expect(200);
    expect(retried.body.retry_count).toBe(1);
    const acked = await ctx.http.post(`/api/notifications/${upper}/acknowledge/`).set(ann.auth).expect(200);
    expect(acked.body.notification).toMatchObject({ id: row.id, delivered: true });
    await ctx.http.get(`/api/notifications/${upper}/`).set(bob.auth).expect(404);
  });

  // --- acknowledge, mark_delivered, mark_read ------------------------------------------------

  it('acknowledges once; a second acknowledgement is 400', async () => {
    const row = await notify(ann, 'to acknowledge', 'WARNING');
    const res = await ctx.http.post(`/api/notifications/${row.id}/acknowledge/`).set(ann.auth).expect(200);
    expect(res.body).toEqual({
      message: 'Notification delivery acknowledged',
      notification: {
        id: row.id,
        type: 'WARNING',
        message: 'to acknowledge',
        created_at: row.createdAt.toISOString(),
        delivered: true,
        delivered_at: expect.stringMatching(ISO_WITH_MS),
        read: false,
      },
    });
    const again = await ctx.http.post(`/api/notifications/${row.id}/acknowledge/`).set(ann.auth).expect(400);
    expect(again.body).toEqual({ error: 'Notification already acknowledged' });
    expect((await getOne(ann, row.id)).delivered_at).toBe(res.body.notification.delivered_at);

    // Delivered some other way first: acknowledging is refused too.
    const other = await notify(ann, 'delivered by mark_delivered');
    await ctx.http.post(`/api/notifications/${other.id}/mark_delivered/`).set(ann.auth).expect(200);
    const refused = await ctx.http.post(`/api/notifications/${other.id}/acknowledge/`).set(ann.auth).expect(400);
    expect(refused.body).toEqual({ error: 'Notification already acknowledged' });
  });

  it("acknowledge answers 404 for another user's, an unknown or a malformed id, and changes nothing", async () => {
    const row = await notify(ann, 'not yours to acknowledge');
    for (const id of [row.id, randomUUID(), 'abc', '123']) {
      const res = await ctx.http.post(`/api/notifications/${id}/acknowledge/`).set(bob.auth).expect(404);
      expect(res.body).toEqual(NOT_FOUND);
    }
    expect(await getOne(ann, row.id)).toMatchObject({ delivered: false, delivered_at: null });
    await ctx.http.post(`/api/notifications/${row.id}/acknowledge/`).set(ann.auth).expect(200);
  });

  it('mark_delivered always answers 200 and keeps the first delivered_at', async () => {
    const row = await notify(ann, 'to mark delivered', 'ERROR');
    const first = await ctx.http.post(`/api/notifications/${row.id}/mark_delivered/`).set(ann.auth).expect(200);
    expect(first.body).toEqual({
      message: 'Notification marked as delivered',
      notification: {
        id: row.id,
        type: 'ERROR',
        message: 'to mark delivered',
        created_at: row.createdAt.toISOString(),
        delivered: true,
        delivered_at: expect.stringMatching(ISO_WITH_MS),
        read: false,
      },
    });
    // Past the first delivered_at: a second one written now would differ from it.
    await pastTime(Date.parse(first.body.notification.delivered_at));
    const second = await ctx.http.post(`/api/notifications/${row.id}/mark_delivered/`).set(ann.auth).expect(200);
    expect(second.body).toEqual(first.body);

    // After an acknowledgement, too, the acknowledgement's time stays.
    const acked = await notify(ann, 'acknowledged, then marked');
    const ack = await ctx.http.post(`/api/notifications/${acked.id}/acknowledge/`).set(ann.auth).expect(200);
    await pastTime(Date.parse(ack.body.notification.delivered_at));
    const marked = await ctx.http.post(`/api/notifications/${acked.id}/mark_delivered/`).set(ann.auth).expect(200);
    expect(marked.body).toEqual({ message: 'Notification marked as delivered', notification: ack.body.notification });
    expect((await getOne(ann, acked.id)).delivered_at).toBe(ack.body.notification.delivered_at);
  });

  it('mark_delivered answers 404 for another user, an unknown or a malformed id, and changes nothing', async () => {
    const row = await notify(ann, 'not yours to deliver');
    for (const id of [row.id, randomUUID(), 'abc', '123']) {
      const res = await ctx.http.post(`/api/notifications/${id}/mark_delivered/`).set(bob.auth).expect(404);
      expect(res.body).toEqual(NOT_FOUND);
    }
    expect(await getOne(ann, row.id)).toMatchObject({ delivered: false, delivered_at: null });
  });

  it('mark_read marks read, is idempotent and leaves delivery alone', async () => {
    const row = await notify(ann, 'to read', 'CRITICAL');
    const res = await ctx.http.post(`/api/notifications/${row.id}/mark_read/`).set(ann.auth).expect(200);
    expect(res.body).toEqual({
      message: 'Notification marked as read',
      notification: {
        id: row.id,
        type: 'CRITICAL',
        message: 'to read',
        created_at: row.createdAt.toISOString(),
        delivered: false,
        delivered_at: null,
        read: true,
      },
    });
    const again = await ctx.http.post(`/api/notifications/${row.id}/mark_read/`).set(ann.auth).expect(200);
    expect(again.body).toEqual(res.body);
    expect(await getOne(ann, row.id)).toEqual(res.body.notification);

    await ctx.http.post(`/api/notifications/${row.id}/acknowledge/`).set(ann.auth).expect(200);
    expect(await getOne(ann, row.id)).toMatchObject({ read: true, delivered: true });
  });

  it('mark_read answers 404 for another user, an unknown or a malformed id, and changes nothing', async () => {
    const row = await notify(ann, 'not yours to read');
    for (const id of [row.id, randomUUID(), 'abc', '123']) {
      const res = await ctx.http.post(`/api/notifications/${id}/mark_read/`).set(bob.auth).expect(404);
      expect(res.body).toEqual(NOT_FOUND);
    }
    expect((await getOne(ann, row.id)).read).toBe(false);
  });

  // --- delivery-status -----------------------------------------------------------------------

  it('reports zeros and a rate of 100 for a user without notifications', async () => {
    const empty = fresh();
    const zero: DeliveryStatus = {
      total: 0,
      delivered: 0,
      undelivered: 0,
      delivery_rate: 100,
      recent_undelivered: [],
      undelivered_notifications: [],
    };
    expect(await status(empty)).toEqual(zero);
    expect(await status(empty, '?delivered=true')).toEqual(zero);
    expect(await status(empty, '?delivered=false')).toEqual(zero);
    expect(await list(empty)).toEqual([]);
    expect(await unread(empty)).toBe(0);
  });

  it('reports totals, the rate with one decimal and the newest undelivered', async () => {
    const stats = fresh();
    const [a, b, c] = await notifyMany(stats, 3, 'stat');
    await deliver(stats, [a.id]);
    const res = await status(stats);
    expect(res).toEqual({
      total: 3,
      delivered: 1,
      undelivered: 2,
      delivery_rate: 33.3,
      recent_undelivered: [toSummary(c), toSummary(b)],
      undelivered_notifications: [toSummary(c), toSummary(b)],
    });
    for (const item of [...res.recent_undelivered, ...res.undelivered_notifications]) {
      expect(Object.keys(item).sort()).toEqual(['created_at', 'id', 'message', 'type']);
    }

    await deliver(stats, [b.id]);
    expect(await status(stats)).toMatchObject({ total: 3, delivered: 2, undelivered: 1, delivery_rate: 66.7 });

    // 13 more undelivered: the recent list keeps the newest 10, the legacy one all of them.
    const more = await notifyMany(stats, 13, 'more');
    const undeliveredNewestFirst = [...more].reverse().concat(c).map(toSummary);
    const full = await status(stats);
    expect(full).toEqual({
      total: 16,
      delivered: 2,
      undelivered: 14,
      delivery_rate: 12.5,
      recent_undelivered: undeliveredNewestFirst.slice(0, 10),
      undelivered_notifications: undeliveredNewestFirst,
    });

    expect(await status(stats, '?delivered=true')).toEqual({
      total: 2,
      delivered: 2,
      undelivered: 0,
      delivery_rate: 100,
      recent_undelivered: [],
      undelivered_notifications: [],
    });
    expect(await status(stats, '?delivered=false')).toEqual({
      total: 14,
      delivered: 0,
      undelivered: 14,
      delivery_rate: 0,
      recent_undelivered: undeliveredNewestFirst.slice(0, 10),
      undelivered_notifications: undeliveredNewestFirst,
    });
  });

  it('rounds a delivery rate that falls on a half up, as every other', async () => {
    const halves = fresh();
    const base = Date.now() - 1_000_000;
    const rows = await insertRows(halves, Array.from({ length: 400 }, (_, i) => new Date(base + i)), 'half');
    // 201 of 400 is 50.25 %, 203 of 400 50.75 %: (201 / 400) * 1000 is 502.49999…, rounded down.
    await deliver(halves, rows.slice(0, 201).map((row) => row.id));
    expect(await status(halves)).toMatchObject({ total: 400, delivered: 201, delivery_rate: 50.3 });
    await deliver(halves, rows.slice(201, 203).map((row) => row.id));
    expect(await status(halves)).toMatchObject({ total: 400, delivered: 203, delivery_rate: 50.8 });
  });

  it('keeps the legacy undelivered list to the newest 100', async () => {
    const many = fresh();
    const base = Date.now() - 1_000_000;
    await insertRows(
      many,
      Array.from({ length: 101 }, (_, i) => new Date(base + i * 1000)),
      'many',
    );
    const res = await status(many);
    expect(res).toMatchObject({ total: 101, delivered: 0, undelivered: 101, delivery_rate: 0 });
    const newest = await list(many, '?limit=100');
    expect(res.undelivered_notifications.map((n) => n.id)).toEqual(newest.map((n) => n.id));
    expect(res.recent_undelivered.map((n) => n.id)).toEqual(newest.slice(0, 10).map((n) => n.id));
  });

  it('rejects a bad delivered filter or an unknown parameter on delivery-status', async () => {
    const stats = fresh();
    for (const value of ['yes', '1', 'TRUE', '']) {
      const res = await ctx.http.get(`/api/notifications/delivery-status/?delivered=${value}`).set(stats.auth).expect(400);
      expect(res.body).toEqual({ delivered: FIELD_ERROR });
    }
    const unknown = await ctx.http.get('/api/notifications/delivery-status/?read=true').set(stats.auth).expect(400);
    expect(unknown.body).toEqual({ read: FIELD_ERROR });
  });

  // --- POST delivery-status: retry -----------------------------------------------------------

  it("retries the user's undelivered notifications among those given, or all of them", async () => {
    const retrier = fresh();
    const [u1, u2, u3, d1] = await notifyMany(retrier, 4, 'retry');
    await deliver(retrier, [d1.id]);
    const bobs = await notify(bob, 'bob retry');
    const retry = async (body?: object) => {
      const req = ctx.http.post('/api/notifications/delivery-status/').set(retrier.auth);
      const res = await (body === undefined ? req : req.send(body)).expect(200);
      expect(res.body).toEqual({
        message: `Retry initiated for ${res.body.retry_count} notifications`,
        retry_count: expect.any(Number),
      });
      return res.body.retry_count as number;
    };

    expect(await retry({ notification_ids: [u1.id, u2.id] })).toBe(2);
    expect(await retry({ notification_ids: [u1.id] })).toBe(1);
    expect(await retry({ notification_ids: [u1.id, u1.id] })).toBe(1);
    expect(await retry({ notification_ids: [u1.id, d1.id] })).toBe(1);
    expect(await retry({ notification_ids: [d1.id] })).toBe(0);
    expect(await retry({ notification_ids: [bobs.id] })).toBe(0);
    expect(await retry({ notification_ids: [bobs.id, u3.id, randomUUID()] })).toBe(1);
    expect(await retry({ notification_ids: [] })).toBe(3);
    expect(await retry({})).toBe(3);
    expect(await retry()).toBe(3);

    // A retry changes no state.
    expect(await status(retrier)).toMatchObject({ total: 4, delivered: 1, undelivered: 3 });
    expect(await getOne(bob, bobs.id)).toMatchObject({ delivered: false });
  });

  it('rejects a retry request with a non-uuid id, a wrong shape or an unknown field', async () => {
    const retrier = fresh();
    const [u1] = await notifyMany(retrier, 1, 'retry bad');
    const cases: Array<[unknown, string]> = [
      [{ notification_ids: ['abc'] }, 'notification_ids'],
      [{ notification_ids: [u1.id, '123'] }, 'notification_ids'],
      [{ notification_ids: [42] }, 'notification_ids'],
      [{ notification_ids: u1.id }, 'notification_ids'],
      [{ notification_ids: null }, 'notification_ids'],
      [{ notification_ids: [u1.id], force: true }, 'force'],
      [{ ids: [u1.id] }, 'ids'],
      [[u1.id], 'non_field_errors'],
    ];
    for (const [body, field] of cases) {
      const res = await ctx.http.post('/api/notifications/delivery-status/').set(retrier.auth).send(body as object).expect(400);
      expect(Object.keys(res.body).length).toBeGreaterThan(0);
      expect(Object.keys(res.body).every((key) => key.startsWith(field))).toBe(true);
    }
  });

  // --- POST test/ ----------------------------------------------------------------------------

  it('sends a test notification to oneself', async () => {
    const before = Date.now();
    const res = await ctx.http
      .post('/api/notifications/test/')
      .set(tester.auth)
      .send({ message: 'Test notification message', type: 'INFO' })
      .expect(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(UUID),
      message: 'Test notification sent',
      notification: {
        id: res.body.id,
        type: 'INFO',
        message: 'Test notification message',
        created_at: expect.stringMatching(ISO_WITH_MS),
        delivered: false,
        delivered_at: null,
        read: false,
      },
    });
    expect(Date.parse(res.body.notification.created_at)).toBeGreaterThanOrEqual(before);
    expect(await getOne(tester, res.body.id)).toEqual(res.body.notification);
    expect((await list(tester))[0]).toEqual(res.body.notification);
    await ctx.http.get(`/api/notifications/${res.body.id}/`).set(bob.auth).expect(404);
    // One statement (the token is known; its last use may be written, once a minute).
    const counted = ctx.queryCount();
    await ctx.http.post('/api/notifications/test/').set(tester.auth).send({ message: 'Another', type: 'INFO' }).expect(201);
    expect(ctx.queriesSince(counted).filter((query) => !query.includes('"auth_tokens"'))).toEqual([expect.stringMatching(/^insert into "notifications"/i)]);

    for (const type of TYPES) {
      const typed = await ctx.http.post('/api/notifications/test/').set(tester.auth).send({ message: type, type }).expect(201);
      expect(typed.body.notification).toMatchObject({ type, message: type });
    }

    const unicode = 'Grüße, 世界! 🚀 ñ — “quotes” \\ <b>&amp;</b>\nline two';
    const sent = await ctx.http.post('/api/notifications/test/').set(tester.auth).send({ message: unicode, type: 'OTHER' }).expect(201);
    expect(sent.body.notification.message).toBe(unicode);
    expect((await getOne(tester, sent.body.id)).message).toBe(unicode);

    const longest = 'x'.repeat(2000);
    const long = await ctx.http.post('/api/notifications/test/').set(tester.auth).send({ message: longest, type: 'INFO' }).expect(201);
    expect((await getOne(tester, long.body.id)).message).toBe(longest);

    const padded = await ctx.http.post('/api/notifications/test/').set(tester.auth).send({ message: '  padded  ', type: 'INFO' }).expect(201);
    expect(padded.body.notification.message).toBe('padded');
  });

  it('inserts the single-recipient notifications of one moment with one statement, and refuses only an unknown recipient’s', async () => {
    const { db, t } = ctx.database.store;
    const [ann, bob, gone] = await Promise.all([ctx.createUser(), ctx.createUser(), ctx.createUser()]);
    await db.delete(t.users).where(eq(t.users.id, gone.id));
    const notifications = ctx.services.notifications;
    const content = { type: 'INFO', message: 'same moment' } as const;

    let counted = ctx.queryCount();
    const made = await Promise.all([ann, bob, ann].map((user) => notifications.notify([user.id], content)));
    expect(ctx.queriesSince(counted).filter((query) => /^insert into "notifications"/i.test(query))).toHaveLength(1);
    expect(made.map(([row]) => row.userId)).toEqual([ann.id, bob.id, ann.id]);
    const stored = await db.select({ id: t.notifications.id, userId: t.notifications.userId }).from(t.notifications).where(eq(t.notifications.message, 'same moment'));
    expect(stored).toHaveLength(3);
    expect(new Set(stored.map((row) => row.id))).toEqual(new Set(made.map(([row]) => row.id)));

    // A recipient deleted meanwhile refuses the shared statement: the others are made, each on its own.
    counted = ctx.queryCount();
    const outcomes = await Promise.allSettled([ann, gone, bob].map((user) => notifications.notify([user.id], { type: 'INFO', message: 'with a gone user' })));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ message: expect.stringMatching(`Unknown user ids: ${gone.id}`) });
    expect(ctx.queriesSince(counted).filter((query) => /^insert into "notifications"/i.test(query))).toHaveLength(4);
    const kept = await db.select({ userId: t.notifications.userId }).from(t.notifications).where(eq(t.notifications.message, 'with a gone user'));
    expect(kept.map((row) => row.userId).sort()).toEqual([ann.id, bob.id].sort());
  });

  it('rejects a bad test notification with 400 and writes nothing', async () => {
    const before = (await list(tester, '?limit=100')).length;
    const cases: Array<[unknown, string]> = [
      [{ message: 'x', type: 'DEBUG' }, 'type'],
      [{ message: 'x', type: 'info' }, 'type'],
      [{ message: 'x', type: '' }, 'type'],
      [{ message: 'x', type: 1 }, 'type'],
      [{ message: 'x' }, 'type'],
      [{ message: '', type: 'INFO' }, 'message'],
      [{ message: '   ', type: 'INFO' }, 'message'],
      [{ message: 'x'.repeat(2001), type: 'INFO' }, 'message'],
      [{ message: 42, type: 'INFO' }, 'message'],
      [{ type: 'INFO' }, 'message'],
      [{ message: 'x', type: 'INFO', user_id: bob.id }, 'user_id'],
      [{ message: 'x', type: 'INFO', delivered: true }, 'delivered'],
      [[], 'non_field_errors'],
    ];
    for (const [body, field] of cases) {
      const res = await ctx.http.post('/api/notifications/test/').set(tester.auth).send(body as object).expect(400);
      expect(res.body).toEqual({ [field]: FIELD_ERROR });
    }
    const noBody = await ctx.http.post('/api/notifications/test/').set(tester.auth).expect(400);
    expect(Object.keys(noBody.body).sort()).toEqual(['message', 'type']);
    expect((await list(tester, '?limit=100')).length).toBe(before);
  });

  it('refuses a message with a null character with 400 on every dialect, and writes nothing', async () => {
    const before = await rowsInTable();
    const refused = { message: ['Null characters are not allowed.'] };
    for (const message of ['a\u0000b', '\u0000']) {
      expect((await ctx.http.post('/api/notifications/test/').set(tester.auth).send({ message, type: 'INFO' }).expect(400)).body).toEqual(refused);
      expect((await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message }).expect(400)).body).toEqual(refused);
      // A refused request does not claim its Idempotency-Key.
      const key = `nul-${randomUUID()}`;
      await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message }, key).expect(400);
      await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message: 'no nul' }, key).expect(201);
    }
    expect(await rowsInTable()).toBe(before + 2);
  });

  // --- unread-count and mark_all_read --------------------------------------------------------

  it('counts unread and marks all read, only for oneself', async () => {
    const reader = fresh();
    const rows = await notifyMany(reader, 3, 'unread');
    await notify(bob, 'bob unread');
    const bobUnread = await unread(bob);
    expect(bobUnread).toBeGreaterThan(0);

    expect(await unread(reader)).toBe(3);
    await ctx.http.post(`/api/notifications/${rows[0].id}/mark_read/`).set(reader.auth).expect(200);
    expect(await unread(reader)).toBe(2);
    await ctx.http.post(`/api/notifications/${rows[0].id}/mark_read/`).set(reader.auth).expect(200);
    expect(await unread(reader)).toBe(2);

    const all = await ctx.http.post('/api/notifications/mark_all_read/').set(reader.auth).expect(200);
    expect(all.body).toEqual({ updated: 2 });
    expect(await unread(reader)).toBe(0);
    expect(await list(reader, '?read=false')).toEqual([]);
    expect((await list(reader)).every((n) => n.read)).toBe(true);
    const again = await ctx.http.post('/api/notifications/mark_all_read/').set(reader.auth).expect(200);
    expect(again.body).toEqual({ updated: 0 });

    expect(await unread(bob)).toBe(bobUnread);
    await notify(reader, 'after all read');
    expect(await unread(reader)).toBe(1);
  });

  // --- isolation -----------------------------------------------------------------------------

  it("never lets another user see, count or change one's notifications", async () => {
    const bobList = await listIds(bob, '?limit=100');
    const bobStatus = await status(bob);
    const bobUnread = await unread(bob);

    const mine = await notify(ann, 'private to ann');
    expect(await listIds(ann)).toContain(mine.id);
    expect(await listIds(bob, '?limit=100')).toEqual(bobList);
    for (const query of ['?delivered=false', '?read=false', '?delivered=false&read=false']) {
      expect(await listIds(bob, `${query}&limit=100`)).not.toContain(mine.id);
    }
    expect(await status(bob)).toEqual(bobStatus);
    expect(await status(bob, '?delivered=false')).toMatchObject({ total: bobStatus.undelivered });
    expect(await unread(bob)).toBe(bobUnread);

    await ctx.http.get(`/api/notifications/${mine.id}/`).set(bob.auth).expect(404);
    for (const action of ['acknowledge', 'mark_delivered', 'mark_read']) {
      await ctx.http.post(`/api/notifications/${mine.id}/${action}/`).set(bob.auth).expect(404);
    }
    const retry = await ctx.http
      .post('/api/notifications/delivery-status/')
      .set(bob.auth)
      .send({ notification_ids: [mine.id] })
      .expect(200);
    expect(retry.body.retry_count).toBe(0);
    await ctx.http.post('/api/notifications/mark_all_read/').set(bob.auth).expect(200);

    // bob's cursor walk never strays into ann's rows either.
    const walked = await walk(bob, '/api/notifications/?limit=1');
    expect(walked.ids).toEqual(bobList);

    expect(await getOne(ann, mine.id)).toMatchObject({ delivered: false, delivered_at: null, read: false });
  });

  // --- POST /api/notifications/ (admins) -----------------------------------------------------

  it('refuses non-admins with 403 and creates nothing', async () => {
    const before = await rowsInTable();
    for (const body of [
      { user_ids: [rcpt1.id], type: 'INFO', message: 'not an admin' },
      { all: true, type: 'INFO', message: 'not an admin' },
      // Permission comes before validation (as in DRF): a non-admin learns nothing of the body's rules.
      { user_ids: 'nope', type: 'NOT_A_TYPE' },
      {},
    ]) {
      const res = await create(ann, body).expect(403);
      expect(res.body).toEqual({ detail: expect.any(String) });
      await create(ann, body, `k-${randomUUID()}`).expect(403);
    }
    expect(await rowsInTable()).toBe(before);
  });

  it('creates one notification per listed user, each seen only by its recipient', async () => {
    const message = `admin ${randomUUID()}`;
    const res = await create(admin, { user_ids: [rcpt1.id, rcpt2.id], type: 'WARNING', message }).expect(201);
    expect(res.body).toEqual({ created: 2, ids: [expect.stringMatching(UUID), expect.stringMatching(UUID)] });
    expect(new Set(res.body.ids).size).toBe(2);

    const [mine1] = await withMessage(rcpt1, message);
    const [mine2] = await withMessage(rcpt2, message);
    expect(await withMessage(rcpt1, message)).toHaveLength(1);
    expect(await withMessage(rcpt2, message)).toHaveLength(1);
    expect([mine1.id, mine2.id]).toEqual(res.body.ids);
    expect(mine1).toMatchObject({ type: 'WARNING', message, delivered: false, delivered_at: null, read: false });
    await ctx.http.get(`/api/notifications/${mine2.id}/`).set(rcpt1.auth).expect(404);
    await ctx.http.get(`/api/notifications/${mine1.id}/`).set(rcpt2.auth).expect(404);
    for (const other of [admin, bob, ann]) expect(await withMessage(other, message)).toEqual([]);

    const dup = `dup ${randomUUID()}`;
    const dupRes = await create(admin, { user_ids: [rcpt1.id, rcpt1.id, rcpt2.id, rcpt1.id], type: 'INFO', message: dup }).expect(201);
    expect(dupRes.body.created).toBe(2);
    expect(dupRes.body.ids).toHaveLength(2);
    expect(await withMessage(rcpt1, dup)).toHaveLength(1);
    expect(await withMessage(rcpt2, dup)).toHaveLength(1);

    const self = `self ${randomUUID()}`;
    await create(admin, { user_ids: [admin.id], type: 'SUCCESS', message: self }).expect(201);
    expect(await withMessage(admin, self)).toHaveLength(1);
  });

  it('rejects bad admin requests with 400 and creates nothing', async () => {
    const before = await rowsInTable();
    const message = 'bad request';
    const cases: Array<[object, string | null]> = [
      [{ user_ids: [rcpt1.id], all: true, type: 'INFO', message }, null],
      [{ type: 'INFO', message }, null],
      [{ user_ids: [], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [rcpt1.id, 999_999], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [999_999], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [2_147_483_648], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [rcpt1.id, 1e300], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [0], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [1.5], type: 'INFO', message }, 'user_ids'],
      [{ user_ids: [String(rcpt1.id)], type: 'INFO', message }, 'user_ids'],
      [{ all: false, type: 'INFO', message }, 'all'],
      [{ user_ids: [rcpt1.id], type: 'DEBUG', message }, 'type'],
      [{ user_ids: [rcpt1.id], type: 'INFO', message: '' }, 'message'],
      [{ user_ids: [rcpt1.id], type: 'INFO', message: 'x'.repeat(2001) }, 'message'],
      [{ user_ids: [rcpt1.id], type: 'INFO', message, extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const res = await create(admin, body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      const keys = Object.keys(res.body);
      expect(keys.length).toBeGreaterThan(0);
      if (field) expect(keys.every((key) => key.startsWith(field))).toBe(true);
      for (const messages of Object.values(res.body)) expect(messages).toEqual(expect.arrayContaining([expect.any(String)]));
    }
    const unknown = await create(admin, { user_ids: [rcpt1.id, 999_999], type: 'INFO', message }).expect(400);
    expect(unknown.body).toEqual({ user_ids: [expect.stringContaining('999999')] });
    expect(await rowsInTable()).toBe(before);
  });

  it('replays an Idempotency-Key: same key and body give the same answer and create once', async () => {
    const key = `key-${randomUUID()}`;
    const message = `idem ${randomUUID()}`;
    const body = { user_ids: [rcpt1.id, rcpt2.id], type: 'INFO', message };

    const first = await create(admin, body, key).expect(201);
    expect(first.body).toEqual({ created: 2, ids: [expect.stringMatching(UUID), expect.stringMatching(UUID)] });
    const second = await create(admin, body, key).expect(201);
    expect(second.body).toEqual(first.body);
    // The same request with its fields in another order is the same request.
    const reordered = await create(admin, { message, type: 'INFO', user_ids: [rcpt1.id, rcpt2.id] }, key).expect(201);
    expect(reordered.body).toEqual(first.body);
    expect(await withMessage(rcpt1, message)).toHaveLength(1);
    expect(await withMessage(rcpt2, message)).toHaveLength(1);

    // Same key, another request: 409, nothing created.
    const before = await rowsInTable();
    for (const other of [
      { ...body, message: `${message} changed` },
      { ...body, type: 'ERROR' },
      { ...body, user_ids: [rcpt1.id] },
      { all: true, type: 'INFO', message },
    ]) {
      const res = await create(admin, other, key).expect(409);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    expect(await rowsInTable()).toBe(before);

    // Another admin's key of the same name is theirs alone.
    const theirs = await create(admin2, body, key).expect(201);
    expect(theirs.body.created).toBe(2);
    expect(theirs.body.ids).not.toEqual(first.body.ids);
    expect(await withMessage(rcpt1, message)).toHaveLength(2);
    expect((await create(admin2, body, key).expect(201)).body).toEqual(theirs.body);
    expect((await create(admin, body, key).expect(201)).body).toEqual(first.body);
    expect(await withMessage(rcpt1, message)).toHaveLength(2);

    // Without the header, every request creates.
    const plain = `plain ${randomUUID()}`;
    const a = await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message: plain }).expect(201);
    const b = await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message: plain }).expect(201);
    expect(a.body.ids).not.toEqual(b.body.ids);
    expect(await withMessage(rcpt1, plain)).toHaveLength(2);
  });

  it('purges keys older than 24 hours, every admin’s, without waiting for their reuse', async () => {
    const { db, t } = ctx.database.store;
    const [old, fresh] = [`old-${randomUUID()}`, `fresh-${randomUUID()}`];
    await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message: 'old' }, old).expect(201);
    await create(admin2, { user_ids: [rcpt1.id], type: 'INFO', message: 'fresh' }, fresh).expect(201);
    const dayAndSecondAgo = new Date(Date.now() - 24 * 3600_000 - 1000);
    await db.update(t.idempotencyKeys).set({ createdAt: dayAndSecondAgo }).where(eq(t.idempotencyKeys.key, old));
    expect(await ctx.services.idempotency.purgeExpired()).toBeGreaterThanOrEqual(1);
    const left = (await db.select({ key: t.idempotencyKeys.key }).from(t.idempotencyKeys)).map((row) => row.key);
    expect(left).not.toContain(old);
    expect(left).toContain(fresh);
  });

  it('releases an Idempotency-Key whose request failed, and rejects a bad key', async () => {
    const key = `key-${randomUUID()}`;
    const message = `released ${randomUUID()}`;
    await create(admin, { user_ids: [rcpt1.id, 999_999], type: 'INFO', message }, key).expect(400);
    const ok = await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message }, key).expect(201);
    expect(ok.body.created).toBe(1);
    expect(await withMessage(rcpt1, message)).toHaveLength(1);

    // A non-admin's attempt does not claim the key for anyone.
    const refused = `refused-${randomUUID()}`;
    await create(ann, { user_ids: [rcpt1.id], type: 'INFO', message }, refused).expect(403);
    await create(ann, { user_ids: [rcpt1.id], type: 'INFO', message }, refused).expect(403);

    const tooLong = await create(admin, { user_ids: [rcpt1.id], type: 'INFO', message }, 'k'.repeat(201)).expect(400);
    expect(tooLong.body).toEqual({ 'idempotency-key': FIELD_ERROR });
    expect(await withMessage(rcpt1, message)).toHaveLength(1);
  });

  it('lets concurrent requests with one Idempotency-Key create only once, each answered with what it made', async () => {
    const key = `race-${randomUUID()}`;
    const message = `race ${randomUUID()}`;
    const body = { user_ids: [rcpt1.id, rcpt2.id], type: 'INFO', message };
    const results = await Promise.all(Array.from({ length: 6 }, () => create(admin, body, key)));
    // Each claim of the key waits for the one before to commit, and then replays its answer.
    expect(results.map((res) => res.status)).toEqual(Array(6).fill(201));
    const created = results.filter((res) => res.status === 201);
    for (const res of created) expect(res.body).toEqual(created[0].body);
    expect(await withMessage(rcpt1, message)).toHaveLength(1);
    expect(await withMessage(rcpt2, message)).toHaveLength(1);
    expect((await create(admin, body, key).expect(201)).body).toEqual(created[0].body);
  });

  it('forgets an Idempotency-Key after 24 hours', async () => {
    const key = `old-${randomUUID()}`;
    const message = `expiring ${randomUUID()}`;
    const body = { user_ids: [rcpt1.id], type: 'INFO', message };
    const first = await create(admin, body, key).expect(201);

    const { db, t } = ctx.database.store;
    const k = t.idempotencyKeys;
    const mine = and(eq(k.userId, admin.id), eq(k.key, key));
    await db.update(k).set({ createdAt: new Date(Date.now() - 23 * 3600_000) }).where(mine);
    expect((await create(admin, body, key).expect(201)).body).toEqual(first.body);
    await create(admin, { ...body, message: `${message} other` }, key).expect(409);

    await db.update(k).set({ createdAt: new Date(Date.now() - 25 * 3600_000) }).where(mine);
    const again = await create(admin, body, key).expect(201);
    expect(again.body.ids).not.toEqual(first.body.ids);
    expect(await withMessage(rcpt1, message)).toHaveLength(2);
  });

  it('leaves nothing of a request whose process died before its answer was kept: the retry sends once', async () => {
    const database = await dyingDatabase(ctx.database, 'update "idempotency_keys"');
    const serverOn = (store: Store) => {
      const deps = { store, logger: pino({ level: 'silent' }), rateLimits: false as const };
      const services = createServices(deps);
      return { services, http: request(createApp(deps, services)) };
    };
    const before = serverOn(database.store);
    const [sender, recipient] = [await createUser(before, { admin: true }), await createUser(before)];
    const body = { user_ids: [recipient.id], type: 'INFO', message: 'sent once' };
    const send = (server: typeof before) => server.http.post('/api/notifications/').set(sender.auth).set('Idempotency-Key', 'died').send(body);
    expect((await send(before)).status).toBeGreaterThanOrEqual(500);
    before.services.hub.close();
    const after = serverOn(await database.restart());
    try {
      const retried = await send(after).expect(201);
      expect((await send(after).expect(201)).body).toEqual(retried.body);
      const received = await after.services.notifications.list(recipient.id, { limit: 10 });
      expect(received.items.map((notification) => notification.message)).toEqual(['sent once']);
    } finally {
      after.services.hub.close();
      await database.cleanUp();
    }
  });

  it('takes over a key an earlier version of the server left without an answer, once its request must have died', async () => {
    const key = `crashed-${randomUUID()}`;
    const message = `crashed ${randomUUID()}`;
    const body = { user_ids: [rcpt1.id], type: 'INFO', message };
    const other = { ...body, message: `${message} other` };
    const first = await create(admin, body, key).expect(201);
    // Those versions kept the answer after the work: a request still running there (a rolling
    // deploy), or one that died in between, left it null.
    const { db, t } = ctx.database.store;
    const k = t.idempotencyKeys;
    const mine = and(eq(k.userId, admin.id), eq(k.key, key));
    await db.update(k).set({ response: null }).where(mine);
    const refused = (res: Response) => res.body.detail;
    expect(refused(await create(admin, body, key).expect(409))).toBe('A request with this Idempotency-Key is still in progress.');
    expect(refused(await create(admin, other, key).expect(409))).toBe('A request with this Idempotency-Key is still in progress.');
    expect(await withMessage(rcpt1, message)).toHaveLength(1);

    // Past the time any request of that version could still be running: the same request takes it over, no other.
    await db.update(k).set({ createdAt: new Date(Date.now() - LEGACY_CLAIM_ABANDONED_AFTER_MS - 1000) }).where(mine);
    await create(admin, other, key).expect(409);
    const retried = await create(admin, body, key).expect(201);
    expect(retried.body.created).toBe(1);
    expect(retried.body.ids).not.toEqual(first.body.ids);
    expect((await create(admin, body, key).expect(201)).body).toEqual(retried.body);
    expect(await withMessage(rcpt1, message)).toHaveLength(2);

    // Retries that find it abandoned at once: one takes it over, the others replay its answer.
    await db.update(k).set({ response: null, createdAt: new Date(Date.now() - LEGACY_CLAIM_ABANDONED_AFTER_MS - 1000) }).where(mine);
    const racing = await Promise.all(Array.from({ length: 6 }, () => create(admin, body, key)));
    expect(racing.map((res) => res.status)).toEqual(Array(6).fill(201));
    for (const res of racing) expect(res.body).toEqual(racing[0].body);
    expect(await withMessage(rcpt1, message)).toHaveLength(3);
  });

  // --- authentication ------------------------------------------------------------------------

  it('accepts Bearer as well as Token', async () => {
    const res = await ctx.http.get('/api/notifications/unread-count/').set({ Authorization: `Bearer ${ann.token}` }).expect(200);
    expect(res.body).toEqual({ unread: await unread(ann) });
  });

  it('answers 401 on every route without a token or with a bad one, and writes nothing', async () => {
    const row = await notify(ann, 'unauthenticated');
    const before = await rowsInTable();
    const id = row.id;
    const routes: Array<[string, string, object?]> = [
      ['get', '/api/notifications/'],
      ['get', '/api/notifications/?delivered=true&limit=1'],
      ['get', '/api/notifications/?delivered=yes'],
      ['get', `/api/notifications/${id}/`],
      ['get', '/api/notifications/abc/'],
      ['post', `/api/notifications/${id}/acknowledge/`],
      ['post', '/api/notifications/abc/acknowledge/'],
      ['post', `/api/notifications/${id}/mark_delivered/`],
      ['post', `/api/notifications/${id}/mark_read/`],
      ['get', '/api/notifications/delivery-status/'],
      ['post', '/api/notifications/delivery-status/', { notification_ids: [id] }],
      ['post', '/api/notifications/test/', { message: 'x', type: 'INFO' }],
      ['post', '/api/notifications/', { all: true, type: 'INFO', message: 'x' }],
      ['get', '/api/notifications/unread-count/'],
      ['post', '/api/notifications/mark_all_read/'],
    ];
    const auths = [
      {},
      { Authorization: 'Token nope' },
      { Authorization: `Token ${ann.token}x` },
      { Authorization: 'Bearer nope' },
      { Authorization: 'Basic abc' },
      { Authorization: ann.token },
    ];
    for (const auth of auths) {
      for (const [method, path, body] of routes) {
        const req = method === 'get' ? ctx.http.get(path) : ctx.http.post(path);
        const res = await (body ? req.set(auth).send(body) : req.set(auth));
        expect({ method, path, auth, status: res.status }).toEqual({ method, path, auth, status: 401 });
        expect(res.body).toEqual({ detail: expect.any(String) });
      }
    }
    expect(await rowsInTable()).toBe(before);
    expect(await getOne(ann, id)).toMatchObject({ delivered: false, read: false });
  });
});

// A broadcast gives every user of the database a notification: in a database of its own, so that
// it cannot change the figures of any other test, whichever order they run in.
describeApi('notifications: sending to all users', (ctx) => {
  let ann: TestUser;
  let empty: TestUser;
  let admin: TestUser;

  beforeAll(async () => {
    [ann, empty, admin] = await Promise.all([ctx.createUser(), ctx.createUser(), ctx.createUser({ admin: true })]);
    await ctx.services.notifications.notify([ann.id], { type: 'INFO', message: 'ann has one already' });
  });

  const { rowsInTable, create, withMessage } = notificationHelpers(ctx);

  it('creates one notification for every existing user with all: true', async () => {
    const { db, t } = ctx.database.store;
    const users = await db.select({ id: t.users.id }).from(t.users);
    const before = await rowsInTable();
    const message = `broadcast ${randomUUID()}`;

    const startedAt = Date.now();
    const res = await create(admin, { all: true, type: 'CRITICAL', message }).expect(201);
    // The count alone: 100,000 ids would be megabytes of answer, and again under an idempotency key.
    expect(res.body).toEqual({ created: users.length });
    expect(await rowsInTable()).toBe(before + users.length);
    const ids = new Set<string>();
    for (const user of [ann, empty, admin]) {
      const got = await withMessage(user, message);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 'CRITICAL', delivered: false, read: false, delivered_at: null });
      // Made by the database (one INSERT … SELECT): still a version-4 UUID each, and the time of the request.
      expect(got[0].id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Date.parse(got[0].created_at)).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(Date.parse(got[0].created_at)).toBeLessThanOrEqual(Date.now());
      ids.add(got[0].id);
    }
    expect(ids.size).toBe(3);
    for (const user of users) expect(await rowsInTable(user.id)).toBeGreaterThan(0);

    const key = `all-${randomUUID()}`;
    const once = await create(admin, { all: true, type: 'INFO', message: `${message} keyed` }, key).expect(201);
    expect((await create(admin, { all: true, type: 'INFO', message: `${message} keyed` }, key).expect(201)).body).toEqual(once.body);
    expect(await withMessage(empty, `${message} keyed`)).toHaveLength(1);
  });

  it('refuses a broadcast whose message holds a null character, and writes nothing', async () => {
    const before = await rowsInTable();
    const res = await create(admin, { all: true, type: 'INFO', message: 'to all \u0000' }).expect(400);
    expect(res.body).toEqual({ message: ['Null characters are not allowed.'] });
    expect(await rowsInTable()).toBe(before);
  });
});

/** Creating, reading and sending notifications, for a suite's tests. */
function notificationHelpers(ctx: ApiContext) {
  /** Creates one notification through the service (no HTTP); the next one's created_at is later. */
  const notify = async (user: TestUser, message = `note ${randomUUID()}`, type: NotificationType = 'INFO') => {
    const [row] = await ctx.services.notifications.notify([user.id], { type, message });
    await pastCreation(row);
    return row;
  };

  const notifyMany = async (user: TestUser, n: number, prefix = 'n') => {
    const rows: NotificationRow[] = [];
    for (let i = 0; i < n; i++) rows.push(await notify(user, `${prefix} ${i}`));
    return rows;
  };

  /** Rows written straight to the table, with the created_at we choose. */
  const insertRows = async (user: TestUser, createdAts: Date[], prefix: string) => {
    const { store } = ctx.database;
    const rows = createdAts.map((createdAt, i) => ({
      id: randomUUID(),
      userId: user.id,
      type: 'INFO',
      message: `${prefix} ${i}`,
      createdAt,
      deliveredAt: null,
      readAt: null,
    }));
    await store.insertAll(store.t.notifications, rows);
    return rows;
  };

  const deliver = (user: TestUser, ids: string[]) => ctx.services.notifications.confirmDelivery(user.id, ids);

  const list = async (user: TestUser, query = ''): Promise<Notification[]> =>
    (await ctx.http.get(`/api/notifications/${query}`).set(user.auth).expect(200)).body;

  const listIds = async (user: TestUser, query = '') => (await list(user, query)).map((n) => n.id);

  const getOne = async (user: TestUser, id: string): Promise<Notification> =>
    (await ctx.http.get(`/api/notifications/${id}/`).set(user.auth).expect(200)).body;

  const status = async (user: TestUser, query = ''): Promise<DeliveryStatus> =>
    (await ctx.http.get(`/api/notifications/delivery-status/${query}`).set(user.auth).expect(200)).body;

  const unread = async (user: TestUser): Promise<number> =>
    (await ctx.http.get('/api/notifications/unread-count/').set(user.auth).expect(200)).body.unread;

  /** The path of the Link rel="next" header, or null when there is none. */
  const nextLink = (res: Response): string | null => {
    const link = res.headers.link as string | undefined;
    if (link === undefined) return null;
    const match = NEXT_LINK.exec(link);
    expect(match, `malformed Link header: ${link}`).not.toBeNull();
    return match![1];
  };

  /** Follows Link rel="next" from `first` to the end; returns every page. */
  const walk = async (user: TestUser, first: string) => {
    const pages: Notification[][] = [];
    const links: string[] = [];
    let path: string | null = first;
    while (path) {
      const res = await ctx.http.get(path).set(user.auth).expect(200);
      pages.push(res.body);
      path = nextLink(res);
      if (path) links.push(path);
      expect(pages.length).toBeLessThan(50);
    }
    return { pages, links, ids: pages.flat().map((n) => n.id) };
  };

  const rowsInTable = async (userId?: number) => {
    const { db, t } = ctx.database.store;
    const [{ n }] = await db
      .select({ n: count() })
      .from(t.notifications)
      .where(userId === undefined ? undefined : eq(t.notifications.userId, userId));
    return n;
  };

  const toSummary = (row: NotificationRow): Summary => ({
    id: row.id,
    message: row.message,
    created_at: row.createdAt.toISOString(),
    type: row.type,
  });

  const create = (as: TestUser, body: object, key?: string) => {
    const req = ctx.http.post('/api/notifications/').set(as.auth);
    return (key === undefined ? req : req.set('Idempotency-Key', key)).send(body);
  };

  const withMessage = async (user: TestUser, message: string) =>
    (await list(user, '?limit=100')).filter((n) => n.message === message);

  return { notify, notifyMany, insertRows, deliver, list, listIds, getOne, status, unread, nextLink, walk, rowsInTable, toSummary, create, withMessage };
}

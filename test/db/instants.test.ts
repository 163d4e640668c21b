import { randomUUID } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import { beforeAll, expect, it } from 'vitest';
import { openDatabase, type Store } from '../../db/open-database';
import { describeApi, type TestUser } from '../support/api';

/** From the first instant the API takes to the last, and those a date parser gets wrong. */
const INSTANTS = [
  '0001-01-01T00:00:00.000Z',
  '0012-03-04T05:06:07.890Z',
  '0049-12-31T23:59:59.999Z',
  '0099-06-15T12:00:00.001Z',
  '0100-01-01T00:00:00.000Z',
  '1850-06-01T12:00:00.500Z',
  '1960-05-05T23:59:59.250Z',
  '1969-12-31T23:59:59.999Z',
  '2024-02-29T12:34:56.789Z',
  '9999-12-31T23:59:59.999Z',
];

/** Instants are stored and read back to the millisecond, alike on both dialects. */
describeApi('instants', (ctx) => {
  let user: TestUser;

  beforeAll(async () => {
    user = await ctx.createUser();
  });

  async function storeAndRead(store: Store, write = true): Promise<string[]> {
    const { db, t } = store;
    const n = t.notifications;
    const type = `instants-${write}`;
    if (write) {
      await store.insertAll(
        n,
        INSTANTS.map((instant, i) => ({ id: randomUUID(), userId: user.id, type, message: `${i}`, createdAt: new Date(instant), deliveredAt: null, readAt: null })),
      );
    }
    const rows = await db.select({ createdAt: n.createdAt }).from(n).where(eq(n.type, 'instants-true')).orderBy(asc(n.createdAt));
    return rows.map((row) => row.createdAt.toISOString());
  }

  it('reads back every instant it stored, from the year 1 to 9999 (not a year below 100 as a two-digit one)', async () => {
    expect(await storeAndRead(ctx.database.store)).toEqual(INSTANTS);
  });

  it('gives a time entry the UTC day it started on (the summary’s days), before 1970 too', async () => {
    const { store } = ctx.database;
    const e = store.t.timeEntries;
    const owner = await ctx.createUser();
    await store.insertAll(
      e,
      INSTANTS.map((instant) => ({
        userId: owner.id,
        projectId: null,
        title: instant,
        description: '',
        startTime: new Date(instant),
        endTime: new Date(instant),
        idleSeconds: 0,
        createdAt: new Date(),
      })),
    );
    const rows = await store.db.select({ title: e.title, startDay: e.startDay }).from(e).where(eq(e.userId, owner.id)).orderBy(asc(e.startTime));
    expect(rows).toEqual(INSTANTS.map((instant) => ({ title: instant, startDay: instant.slice(0, 10) })));
  });

  it('serves a time entry of the first century with the times it was given', async () => {
    const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: 'Early' }).expect(201)).body.id;
    const times = { start_time: '0012-03-04T05:06:07.000Z', end_time: '0012-03-04T06:06:07.000Z' };
    const created = await ctx.http.post('/api/time_entries/').set(user.auth).send({ title: 'early', project, ...times }).expect(201);
    expect(created.body).toMatchObject({ ...times, duration: '01:00:00' });
    const read = await ctx.http.get(`/api/time_entries/${created.body.id}/`).set(user.auth).expect(200);
    expect(read.body).toMatchObject(times);
  });

  it('reads them alike whatever time zone the Postgres server writes them in (offsets with seconds before standard time)', async () => {
    if (ctx.database.dialect !== 'postgres') return;
    const { store, url } = ctx.database;
    const [{ name }] = (await store.db.execute<{ name: string }>(sql`select current_database() as name`)).rows;
    // New York's local mean time, until 1883, is -04:56:02.
    await store.db.execute(sql.raw(`alter database "${name}" set timezone to 'America/New_York'`));
    const zoned = await openDatabase(url);
    try {
      const [{ zone }] = (await zoned.db.execute<{ zone: string }>(sql`select current_setting('TimeZone') as zone`)).rows;
      expect(zone).toBe('America/New_York');
      expect(await storeAndRead(zoned, false)).toEqual(INSTANTS);
    } finally {
      await zoned.close();
    }
  });
});

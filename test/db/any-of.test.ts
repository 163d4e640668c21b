import { randomUUID } from 'node:crypto';
import { and, asc } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../db/open-database';
import { createTestDatabase, dialects, type TestDatabase } from '../support/databases';

/** Store.anyOf: `column` equal to one of a list, the list bound as one parameter, on both dialects. */
describe.each(dialects)('Store.anyOf [%s]', (dialect) => {
  let database: TestDatabase;
  let store: Store;
  const users: number[] = [];
  const notificationIds: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    store = database.store;
    const { db, t } = store;
    for (const name of ['ann', 'bob', 'cid']) {
      const [user] = await db
        .insert(t.users)
        .values({ username: `${name}-${randomUUID()}`, passwordHash: 'x', firstName: '', lastName: '', isAdmin: false, createdAt: new Date() })
        .returning({ id: t.users.id });
      users.push(user.id);
    }
    const rows = users.flatMap((userId) =>
      [1, 2].map((i) => ({ id: randomUUID(), userId, type: 'INFO', message: `${i}`, createdAt: new Date(), deliveredAt: null, readAt: null })),
    );
    await store.insertAll(t.notifications, rows);
    notificationIds.push(...rows.map((row) => row.id));
  });
  afterAll(() => database.drop());

  const usersOf = async (values: number[]) => {
    const { db, t } = store;
    const rows = await db.select({ id: t.users.id }).from(t.users).where(store.anyOf(t.users.id, values)).orderBy(asc(t.users.id));
    return rows.map((row) => row.id);
  };

  it('matches the rows whose column is one of the values, and none for an empty list', async () => {
    expect(await usersOf([users[0], users[2], 2_000_000_000])).toEqual([users[0], users[2]]);
    expect(await usersOf([])).toEqual([]);
  });

  it('takes more values than either driver binds parameters (one parameter for all of them)', async () => {
    const many = Array.from({ length: 70_000 }, (_, i) => i + 1_000_000);
    expect(await usersOf([...many, users[1]])).toEqual([users[1]]);
  });

  it('compares text and uuid columns, and combines with other conditions', async () => {
    const { db, t } = store;
    const n = t.notifications;
    const wanted = [notificationIds[0], notificationIds[3], randomUUID()];
    const rows = await db
      .select({ id: n.id })
      .from(n)
      .where(and(store.anyOf(n.id, wanted), store.anyOf(n.userId, [users[0]])));
    expect(rows.map((row) => row.id)).toEqual([notificationIds[0]]);
  });

  it('takes any text as it is: quotes, backslashes, commas, braces, spaces, NULL, the empty string', async () => {
    const { db, t } = store;
    const awkward = ['say "hi"', 'C:\\dir\\', 'a,b', '{x}', ' padded ', 'NULL', '', 'é 日本 🎉', '\\"'];
    const made = await db
      .insert(t.users)
      .values(awkward.map((username) => ({ username, passwordHash: 'x', firstName: '', lastName: '', isAdmin: false, createdAt: new Date() })))
      .returning({ id: t.users.id, username: t.users.username });
    const found = await db.select({ username: t.users.username }).from(t.users).where(store.anyOf(t.users.username, awkward));
    expect(found.map((row) => row.username).sort()).toEqual([...awkward].sort());
    // Each one alone too: no element may stand for another.
    for (const username of awkward) {
      const one = await db.select({ id: t.users.id }).from(t.users).where(store.anyOf(t.users.username, [username]));
      expect(one.map((row) => row.id), username).toEqual([made.find((row) => row.username === username)!.id]);
    }
  });
});

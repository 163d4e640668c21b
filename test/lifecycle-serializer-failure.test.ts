// A notification whose row the serializer cannot write (a created_at beyond what a Date holds: a
// row written by hand, Postgres's '-infinity') fails the answer that carries it. Whatever else that
// answer's read claimed must be given back, not kept claimed for good.
import { eq, sql } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { describeApi, type ApiContext, type TestUser } from './support/api';
import { notificationFixtures } from './support/notification-fixtures';
import { until } from './support/waiting';

const SSE = '/api/notifications/sse/';
const POLL = '/api/notifications/long-poll/';

describeApi('an answer whose notification fails to serialize', (ctx: ApiContext) => {
  const { freshUser, notify, insertUnannounced } = notificationFixtures(ctx, 4);

  /** The user's oldest undelivered notification, which no answer can carry, before two good ones. */
  async function poisonFirst(user: TestUser) {
    const poison = await insertUnannounced(user, 'created at no instant a Date holds');
    const { db, t } = ctx.database.store;
    const never = ctx.database.dialect === 'postgres' ? sql`'-infinity'::timestamptz` : sql`-9000000000000000000`;
    await db.update(t.notifications).set({ createdAt: never }).where(eq(t.notifications.id, poison.id));
    return [await notify(user, 'good one'), await notify(user, 'another good one')];
  }

  const claimedNothing = () => until(() => ctx.services.claims.size() === 0, 'nothing to stay claimed').catch(() => {
    throw new Error(`${ctx.services.claims.size()} notifications stay claimed`);
  });

  it('closes a stream that meets one, giving back every claim of its read', async () => {
    const ann = freshUser();
    await poisonFirst(ann);
    const response = await fetch(`${await ctx.listen()}${SSE}`, { headers: { Authorization: `Token ${ann.token}` } });
    expect(response.status).toBe(200);
    await response.text().catch(() => {});
    await claimedNothing();
    await until(() => ctx.services.hub.stats().connections === 0, 'the stream to be closed');
  });

  it('answers a long-poll that meets one 500, giving back every claim of its read', async () => {
    const ann = freshUser();
    await poisonFirst(ann);
    await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(500);
    await claimedNothing();
  });
});

import { expect, it, vi } from 'vitest';
import { LONG_POLL_MAX_NOTIFICATIONS } from '../contract/notifications';
import { REALTIME_DEFAULTS } from '../server/app';
import { describeApi, type ApiContext, type TestUser } from './support/api';
import { notificationFixtures } from './support/notification-fixtures';
import { SwitchableBus } from './support/switchable-bus';
import { pastTime, SLACK_MS, until } from './support/waiting';

const POLL = '/api/notifications/long-poll/';
/**
 * A user is quiet from a read on; the checks that rely on it come after that poll has waited its
 * second (the shortest timeout), and a loaded machine may add SLACK_MS to what follows.
 */
const QUIET_MS = 1000 + SLACK_MS;

/** The bus of the suite running now (describeApi runs the dialects one after the other). */
let bus: SwitchableBus;

function quietFixtures(ctx: ApiContext) {
  const fixtures = notificationFixtures(ctx, 10);
  const poll = async (user: TestUser, timeout = 1) => (await ctx.http.get(`${POLL}?timeout=${timeout}`).set(user.auth).expect(200)).body;
  /** The database queries a poll makes (the token is known by then: they are the poll's own). */
  const queriesOf = async (user: TestUser) => {
    const before = ctx.queryCount();
    const body = await poll(user);
    return { body, queries: ctx.queryCount() - before };
  };
  /** A user whose token this process knows, and whose poll has read that there is nothing for them. */
  const quietUser = async () => {
    const user = fixtures.freshUser();
    expect((await poll(user)).status).toBe('timeout');
    return user;
  };
  return { ...fixtures, poll, queriesOf, quietUser };
}

describeApi(
  'quiet users: a poll for a user who has nothing new asks the database nothing',
  (ctx) => {
    const { notify, insertUnannounced, untilDelivered, queriesOf, quietUser, poll } = quietFixtures(ctx);

    it(`keeps a user quiet for ${REALTIME_DEFAULTS.quietMs / 1000} s by default`, () => {
      expect(REALTIME_DEFAULTS.quietMs).toBe(30_000);
    });

    it('answers the re-poll after an answer without a query, and a new notification still arrives', async () => {
      const ann = await quietUser();
      const row = await notify(ann, 'first');
      expect((await poll(ann)).notifications.map((n: { id: string }) => n.id)).toEqual([row.id]);
      await untilDelivered(ann, row.id);
      // The read that took it found all there was: the next poll has nothing to read.
      const repoll = await queriesOf(ann);
      expect(repoll.body.status).toBe('timeout');
      expect(repoll.queries).toBe(0);
      // A notification wakes its user: the next poll reads, and gets it.
      const next = await notify(ann, 'second');
      const answer = await queriesOf(ann);
      expect(answer.body).toMatchObject({ status: 'immediate', notifications: [{ id: next.id }] });
      expect(answer.queries).toBeGreaterThan(0);
    });

    it(`reads again for a user whose read was cut at its limit of ${LONG_POLL_MAX_NOTIFICATIONS} (more were waiting)`, async () => {
      const bob = await quietUser();
      const made: string[] = [];
      for (let i = 0; i <= LONG_POLL_MAX_NOTIFICATIONS; i++) made.push((await notify(bob, `many ${i}`)).id);
      const ids = (body: { notifications: Array<{ id: string }> }) => body.notifications.map((n) => n.id);
      const first = ids(await poll(bob));
      expect(first).toHaveLength(LONG_POLL_MAX_NOTIFICATIONS);
      const next = await poll(bob);
      expect(next.status).toBe('immediate');
      expect([...first, ...ids(next)].sort()).toEqual([...made].sort());
    });

    it(`finds a notification made without a wake-up once ${QUIET_MS} ms of quiet are over`, async () => {
      const cy = await quietUser();
      // Quiet since that poll's read, which came before its answer: over by this time.
      const quietUntil = Date.now() + QUIET_MS;
      const row = await insertUnannounced(cy, 'nobody announced this');
      // Still quiet: nothing said that anything came.
      expect((await poll(cy)).status).toBe('timeout');
      await pastTime(quietUntil);
      expect(await poll(cy)).toMatchObject({ status: 'immediate', notifications: [{ id: row.id }] });
    });

    it('reads while the bus is unhealthy (it may be missing wake-ups), and forgets who was quiet when it recovers', async () => {
      const dee = await quietUser();
      bus.setHealthy(false);
      try {
        const row = await insertUnannounced(dee, 'made while the bus was down');
        expect(await poll(dee)).toMatchObject({ status: 'immediate', notifications: [{ id: row.id }] });
        await untilDelivered(dee, row.id);
        // Nothing is marked quiet while the bus may be missing messages.
        expect((await queriesOf(dee)).queries).toBeGreaterThan(0);
      } finally {
        bus.setHealthy(true);
      }
      const eve = await quietUser();
      bus.setHealthy(false);
      const lost = await insertUnannounced(eve, 'its wake-up lost in the outage');
      bus.setHealthy(true);
      expect(await poll(eve)).toMatchObject({ status: 'immediate', notifications: [{ id: lost.id }] });
    });

    it('offers a notification whose delivery mark failed again, even to a read that was under way', async () => {
      const gus = await quietUser();
      const row = await notify(gus, 'its mark fails');
      const { claims, notifications } = ctx.services;
      expect((await claims.take(gus.id, 100)).map((one) => one.id)).toEqual([row.id]);
      // A new notification wakes the user; the read it starts, while the first is claimed, leaves
      // that one out and finds all else there is.
      const next = await notify(gus, 'made meanwhile');
      const undelivered = notifications.undelivered.bind(notifications);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const read = vi.spyOn(notifications, 'undelivered').mockImplementationOnce(async (...args) => {
        const rows = await undelivered(...args);
        await held;
        return rows;
      });
      const failing = vi.spyOn(notifications, 'confirmDelivery').mockRejectedValueOnce(new Error('the database went away'));
      try {
        const during = claims.take(gus.id, 100);
        await until(() => read.mock.calls.length === 1, 'the read to be under way');
        await expect(claims.confirm(gus.id, [row.id])).rejects.toThrow('the database went away');
        release();
        expect((await during).map((one) => one.id)).toEqual([next.id]);
      } finally {
        read.mockRestore();
        failing.mockRestore();
      }
      // That read must not have made the user quiet: the notification is undelivered and unclaimed.
      expect(await poll(gus)).toMatchObject({ status: 'immediate', notifications: [{ id: row.id }] });
    });

    it('offers a claim given back again: the user is no longer quiet', async () => {
      const fay = await quietUser();
      const row = await notify(fay, 'taken, then given back');
      const taken = await ctx.services.claims.take(fay.id, 100);
      expect(taken.map((one) => one.id)).toEqual([row.id]);
      ctx.services.claims.abandon(fay.id, [row.id]);
      expect(await poll(fay)).toMatchObject({ status: 'immediate', notifications: [{ id: row.id }] });
    });
  },
  {
    realtime: { quietMs: QUIET_MS },
    bus: () => {
      bus = new SwitchableBus();
      return bus;
    },
  },
);

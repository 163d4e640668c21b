import net from 'node:net';
import { expect, it } from 'vitest';
import { REALTIME_DEFAULTS } from '../server/app';
import type { NotificationRow, NotificationType } from '../server/notifications/notifications.service';
import { pastCreation, sleep, until, wire } from './support/waiting';
import { alreadyGone, notificationFixtures, stillThere } from './support/notification-fixtures';
import { describeApi, type TestUser } from './support/api';

const POLL = '/api/notifications/long-poll/';
const CAP = REALTIME_DEFAULTS.maxConnectionsPerUser;


const TIMEOUT_BODY = {
  status: 'timeout',
  notifications: [],
  has_new_notifications: false,
  message: 'No new notifications in the specified time period',
};

describeApi('notifications long-poll', (ctx) => {
  const { freshUser, notify, getNotification, untilDelivered } = notificationFixtures(ctx, 17);
  /** Starts a poll through supertest without waiting for its answer. */
  const startPoll = (user: TestUser, query = '?timeout=10') => ctx.http.get(`${POLL}${query}`).set(user.auth).then((res) => res);
  const untilSubscribers = (count: number) =>
    until(() => ctx.services.hub.stats().subscribers === count, `${count} waiting subscribers`);
  const untilIdle = () =>
    until(() => {
      const stats = ctx.services.hub.stats();
      return stats.users === 0 && stats.subscribers === 0 && stats.connections === 0;
    }, 'the hub to be idle');

  it('rejects a timeout outside 1..60 or not an integer with 400 {"timeout": [...]}', async () => {
    const ann = freshUser();
    for (const value of ['0', '61', 'abc', '-1', '1.5', '']) {
      const res = await ctx.http.get(`${POLL}?timeout=${value}`).set(ann.auth).expect(400);
      expect(res.body).toEqual({ timeout: [expect.any(String)] });
    }
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
  });

  it('accepts the default timeout (30) and the bounds 1 and 60', async () => {
    const ann = freshUser();
    const first = await notify(ann, 'default timeout');
    const res = await ctx.http.get(POLL).set(ann.auth).expect(200);
    expect(res.body).toEqual({ status: 'immediate', notifications: [wire(first)], has_new_notifications: true });
    await untilDelivered(ann, first.id);

    const low = await notify(ann, 'timeout=1');
    await pastCreation(low);
    const high = await notify(ann, 'timeout=60');
    const atLow = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(200);
    expect(atLow.body.notifications).toEqual([wire(low), wire(high)]);
    await untilDelivered(ann, high.id);
    const atHigh = await notify(ann, 'again');
    const res60 = await ctx.http.get(`${POLL}?timeout=60`).set(ann.auth).expect(200);
    expect(res60.body.notifications.map((n: { id: string }) => n.id)).toEqual([atHigh.id]);
  });

  it("answers 'immediate' with the undelivered, marks them delivered, then times out", async () => {
    const ann = freshUser();
    const a = await notify(ann, 'first', 'WARNING');
    await pastCreation(a);
    const b = await notify(ann, 'second', 'CRITICAL');

    const res = await ctx.http.get(`${POLL}?timeout=5`).set(ann.auth).expect(200).expect('Content-Type', /json/);
    expect(res.body).toEqual({ status: 'immediate', notifications: [wire(a), wire(b)], has_new_notifications: true });

    for (const row of [a, b]) {
      const delivered = await untilDelivered(ann, row.id);
      expect(delivered).toEqual({ ...wire(row), delivered: true, delivered_at: expect.any(String) });
      expect(Date.parse(delivered.delivered_at)).toBeGreaterThanOrEqual(row.createdAt.getTime());
    }

    const started = Date.now();
    const again = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(200);
    expect(again.body).toEqual(TIMEOUT_BODY);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("answers 'new_notification' as soon as one is created while waiting", async () => {
    const ann = freshUser();
    const started = Date.now();
    const poll = startPoll(ann, '?timeout=10');
    await untilSubscribers(1);
    await sleep(Math.max(0, 300 - (Date.now() - started)));
    const row = await notify(ann, 'while you wait', 'SUCCESS');

    const res = await poll;
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'new_notification',
      notifications: [wire(row)],
      has_new_notifications: true,
      message: 'New notification received',
    });
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(3000);
    await untilDelivered(ann, row.id);
    await untilIdle();
  });

  it('sends at most 100 per response, oldest first; the next poll gets the rest', async () => {
    const ann = freshUser();
    const rows: NotificationRow[] = [];
    for (let i = 0; i < 105; i++) {
      rows.push(await notify(ann, `bulk ${i}`));
      await pastCreation(rows[i]); // a distinct created_at each: "oldest first" is the creation order
    }

    const first = await ctx.http.get(`${POLL}?timeout=5`).set(ann.auth).expect(200);
    expect(first.body.status).toBe('immediate');
    expect(first.body.notifications).toHaveLength(100);
    expect(first.body.notifications).toEqual(rows.slice(0, 100).map(wire));
    await untilDelivered(ann, rows[99].id);
    await until(async () => {
      const left = await ctx.http.get('/api/notifications/?delivered=false').set(ann.auth).expect(200);
      return left.body.length === 5;
    }, 'the first 100 to be marked delivered');

    const second = await ctx.http.get(`${POLL}?timeout=5`).set(ann.auth).expect(200);
    expect(second.body).toEqual({
      status: 'immediate',
      notifications: rows.slice(100).map(wire),
      has_new_notifications: true,
    });
  });

  it('runs no database query while it waits', async () => {
    const ann = freshUser();
    const started = Date.now();
    const poll = startPoll(ann, '?timeout=3');
    await untilSubscribers(1);
    await sleep(Math.max(0, 300 - (Date.now() - started)));
    const early = ctx.queryCount();
    await sleep(2500 - (Date.now() - started));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(ctx.queryCount()).toBe(early);

    const res = await poll;
    expect(res.status).toBe(200);
    expect(res.body).toEqual(TIMEOUT_BODY);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2950);
    await untilIdle();
  });

  it('leaves notifications undelivered for a client that went away, and frees its slot', async () => {
    const ann = freshUser();
    const base = await ctx.listen();
    const controller = new AbortController();
    const aborted = fetch(`${base}${POLL}?timeout=20`, {
      headers: { Authorization: `Token ${ann.token}` },
      signal: controller.signal,
    }).then(
      () => 'answered',
      (error: Error) => error.name,
    );
    await untilSubscribers(1);
    expect(ctx.services.hub.stats()).toEqual({ users: 1, subscribers: 1, connections: 1 });
    controller.abort();
    expect(await aborted).toBe('AbortError');
    // The server notices the closed socket: the wait ends at once, not after 20 s.
    await untilIdle();

    const row = await notify(ann, 'nobody listening');
    await sleep(200);
    expect(await getNotification(ann, row.id)).toEqual(wire(row));

    const res = await ctx.http.get(`${POLL}?timeout=5`).set(ann.auth).expect(200);
    expect(res.body).toEqual({ status: 'immediate', notifications: [wire(row)], has_new_notifications: true });
    await untilDelivered(ann, row.id);
  });

  it('ends at once, reading nothing more, for a wait whose client is already gone', async () => {
    const ann = freshUser();
    const started = Date.now();
    const result = await ctx.services.longPoll.wait(ann.id, 5000, alreadyGone);
    expect(result).toEqual({ status: 'timeout', notifications: [] });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
  });

  it('frees the slot at once for clients that left before their poll started waiting', async () => {
    const ann = freshUser();
    const { hostname, port } = new URL(await ctx.listen());
    const started = Date.now();
    // Each client sends its request and is gone while the server is still authenticating it.
    for (let i = 0; i < CAP; i++) {
      const socket = net.connect(Number(port), hostname);
      await new Promise((resolve) => socket.once('connect', resolve));
      const request = `GET ${POLL}?timeout=20 HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Token ${ann.token}\r\n\r\n`;
      socket.write(request, () => socket.destroy());
    }
    await sleep(200);
    await untilIdle();
    expect(Date.now() - started).toBeLessThan(5000);
    // Not locked out by leftovers: a full set of polls is accepted.
    const polls = await Promise.all(Array.from({ length: CAP }, () => startPoll(ann, '?timeout=1')));
    expect(polls.map((res) => res.status)).toEqual(Array(CAP).fill(200));
  });

  it('keeps what an answer carries from other polls until it is written or lost', async () => {
    const ann = freshUser();
    const { longPoll, claims } = ctx.services;
    const row = await notify(ann, 'in flight');

    const first = await longPoll.wait(ann.id, 5000, stillThere);
    expect(first).toEqual({ status: 'immediate', notifications: [expect.objectContaining({ id: row.id })] });
    // Not written yet, not lost yet: another poll does not get it again.
    const second = longPoll.wait(ann.id, 3000, stillThere);
    await untilSubscribers(1);
    await sleep(100);
    expect(ctx.services.hub.stats().subscribers).toBe(1);

    // The first answer never reached its client: the waiting poll is offered it at once.
    claims.abandon(ann.id, [row.id]);
    expect(await second).toEqual({ status: 'new_notification', notifications: [expect.objectContaining({ id: row.id })] });
    expect(await getNotification(ann, row.id)).toEqual(wire(row));

    // This one was written: delivered, and no poll gets it again.
    await claims.confirm(ann.id, [row.id]);
    expect(await getNotification(ann, row.id)).toEqual({ ...wire(row), delivered: true, delivered_at: expect.any(String) });
    expect(await longPoll.wait(ann.id, 300, stillThere)).toEqual({ status: 'timeout', notifications: [] });
    expect(claims.size()).toBe(0);
    await untilIdle();
  });

  it('leaves a notification undelivered when an error answer went out in place of it', async () => {
    const ann = freshUser();
    // A row the contract cannot serialize (a type outside the enum) makes the answer a 500.
    const [row] = await ctx.services.notifications.notify([ann.id], { type: 'NOT_A_TYPE' as NotificationType, message: 'unsendable' });
    const res = await ctx.http.get('/api/notifications/long-poll/?timeout=1').set(ann.auth).expect(500);
    expect(res.body).toEqual({ detail: 'Internal server error' });
    await until(() => ctx.services.claims.size() === 0, 'the claim to be handed back');
    expect((await ctx.services.notifications.get(ann.id, row.id)).deliveredAt).toBeNull();
  });

  it('wakes two concurrent polls of one user; the notification is delivered once', async () => {
    const ann = freshUser();
    const started = Date.now();
    const polls = [startPoll(ann, '?timeout=2'), startPoll(ann, '?timeout=2')];
    await untilSubscribers(2);
    const row = await notify(ann, 'for both');

    const answers = await Promise.all(polls);
    for (const res of answers) {
      expect(res.status).toBe(200);
      if (res.body.status === 'new_notification') {
        expect(res.body.notifications).toEqual([wire(row)]);
      } else {
        expect(res.body).toEqual(TIMEOUT_BODY);
      }
    }
    expect(answers.filter((res) => res.body.status === 'new_notification').length).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(4000);

    const delivered = await untilDelivered(ann, row.id);
    await sleep(300);
    expect(await getNotification(ann, row.id)).toEqual(delivered);
    const list = await ctx.http.get('/api/notifications/').set(ann.auth).expect(200);
    expect(list.body).toEqual([delivered]);
    await untilIdle();
  });

  it(`caps open polls per user at ${CAP} with 429 + Retry-After; other users are unaffected`, async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const started = Date.now();
    const polls = Array.from({ length: CAP }, () => startPoll(ann, '?timeout=3'));
    await untilSubscribers(CAP);
    expect(ctx.services.hub.stats()).toEqual({ users: 1, subscribers: CAP, connections: CAP });

    const refused = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toEqual({ detail: expect.stringContaining(String(CAP)) });
    expect(ctx.services.hub.stats().connections).toBe(CAP);

    const forBob = await notify(bob, 'bob is not capped');
    const bobs = await ctx.http.get(`${POLL}?timeout=1`).set(bob.auth).expect(200);
    expect(bobs.body).toEqual({ status: 'immediate', notifications: [wire(forBob)], has_new_notifications: true });

    // One notification wakes all of ann's waits; those that find it taken by another wait out their time.
    const row = await notify(ann, 'wake them all');
    const answers = await Promise.all(polls);
    expect(answers.map((res) => res.status)).toEqual(Array(CAP).fill(200));
    expect(answers.filter((res) => res.body.status === 'new_notification').length).toBeGreaterThanOrEqual(1);
    for (const res of answers) {
      if (res.body.status === 'new_notification') expect(res.body.notifications).toEqual([wire(row)]);
      else expect(res.body).toEqual(TIMEOUT_BODY);
    }
    expect(Date.now() - started).toBeLessThan(5000);
    await untilIdle();
    await untilDelivered(ann, row.id);

    const again = await Promise.all(Array.from({ length: CAP }, () => startPoll(ann, '?timeout=1')));
    expect(again.map((res) => res.status)).toEqual(Array(CAP).fill(200));
    await untilIdle();
  });

  it("never answers a user's poll with another user's notifications", async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const started = Date.now();
    const bobsPoll = startPoll(bob, '?timeout=1');
    await untilSubscribers(1);
    const forAnn = await notify(ann, 'for ann only');
    const res = await bobsPoll;
    expect(res.status).toBe(200);
    expect(res.body).toEqual(TIMEOUT_BODY);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    // Bob's poll did not mark it delivered either.
    expect(await getNotification(ann, forAnn.id)).toEqual(wire(forAnn));
    await ctx.http.get(`/api/notifications/${forAnn.id}/`).set(bob.auth).expect(404);

    const annsPoll = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(200);
    expect(annsPoll.body.notifications).toEqual([wire(forAnn)]);
  });

  it('answers 401 without a token or with a bad one', async () => {
    for (const auth of [{}, { Authorization: 'Token nope' }, { Authorization: 'Bearer nope' }, { Authorization: 'Basic abc' }]) {
      const res = await ctx.http.get(`${POLL}?timeout=1`).set(auth).expect(401);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
  });

  it("works with SPEC.md's pollNotifications client", async () => {
    const ann = freshUser();
    const baseUrl = await ctx.listen();
    const authToken = ann.token;
    const shown: Array<{ message: string; type: string }> = [];
    const showNotification = (message: string, type: string) => shown.push({ message, type });
    const seen = new Set<string>();
    let duplicates = 0;
    const errors: unknown[] = [];
    const controller = new AbortController();
    let stopped = false;
    const deadline = Date.now() + 8000;
    const stop = () => {
      stopped = true;
      controller.abort();
    };

    // SPEC.md's example, with the base URL prefixed and a way to stop.
    async function pollNotifications(): Promise<void> {
      if (stopped || Date.now() > deadline) return;
      try {
        const response = await fetch(`${baseUrl}/api/notifications/long-poll/?timeout=30`, {
          headers: {
            Authorization: `Bearer ${authToken}`,
            'Content-Type': 'application/json',
          },
          signal: controller.signal,
        });

        const data = await response.json();

        if (data.has_new_notifications) {
          // Handle new notifications
          data.notifications.forEach((notification: { id: string; message: string; type: string }) => {
            if (seen.has(notification.id)) return void duplicates++;
            seen.add(notification.id);
            showNotification(notification.message, notification.type);
          });
          if (shown.length >= 3) return stop();

          // Continue polling immediately for more notifications
          void pollNotifications();
        } else {
          // No new notifications, wait and poll again
          setTimeout(pollNotifications, 1000);
        }
      } catch (error) {
        if (stopped) return;
        errors.push(error);
        // Retry after error with longer delay
        setTimeout(pollNotifications, 5000);
      }
    }

    const first = await notify(ann, 'before the client starts', 'INFO');
    void pollNotifications();
    await sleep(300);
    const second = await notify(ann, 'while it waits', 'WARNING');
    await sleep(400);
    const third = await notify(ann, 'a bit later', 'ERROR');

    await until(() => stopped, 'the client to receive 3 notifications', 5000);
    expect(errors).toEqual([]);
    // An immediate re-poll does not get again what the previous answer carried.
    expect(duplicates).toBe(0);
    expect(shown).toEqual([
      { message: 'before the client starts', type: 'INFO' },
      { message: 'while it waits', type: 'WARNING' },
      { message: 'a bit later', type: 'ERROR' },
    ]);
    expect([...seen]).toEqual([first.id, second.id, third.id]);
    for (const row of [first, second, third]) await untilDelivered(ann, row.id);
    await untilIdle();
  });
});

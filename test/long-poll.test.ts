import net from 'node:net';
import { eq } from 'drizzle-orm';
import { expect, it, vi } from 'vitest';
import { REALTIME_DEFAULTS } from '../server/app';
import { SwitchableBus } from './support/switchable-bus';
import type { NotificationRow, NotificationType } from '../server/notifications/notifications.service';
import { graceForStrayEvents, pastCreation, SLACK_MS, until, wire } from './support/waiting';
import { alreadyGone, BULKY_MESSAGE, notificationFixtures, serveOnUnixSocket, stillThere } from './support/notification-fixtures';
import { anotherSession, describeApi, type ApiContext, type TestUser } from './support/api';

const POLL = '/api/notifications/long-poll/';
const CAP = REALTIME_DEFAULTS.maxConnectionsPerUser;

const TIMEOUT_BODY = {
  status: 'timeout',
  notifications: [],
  has_new_notifications: false,
  message: 'No new notifications in the specified time period',
};

const newNotificationBody = (...rows: NotificationRow[]) => ({
  status: 'new_notification',
  notifications: rows.map(wire),
  has_new_notifications: true,
  message: 'New notification received',
});

/** What the long-poll suites share: starting polls and waiting until they wait. */
function pollFixtures(ctx: ApiContext, userCount: number) {
  const fixtures = notificationFixtures(ctx, userCount);
  const { readsDone, untilReadsDone } = fixtures;
  /** Starts a poll through supertest without waiting for its answer. */
  const startPoll = (user: TestUser, query = '?timeout=10') => ctx.http.get(`${POLL}${query}`).set(user.auth).then((res) => res);
  /**
   * Starts `count` polls of the user's and resolves once each has done its first read: they wait in
   * the hub, and what the test creates next has to wake them. (The answers are wrapped: awaiting
   * this does not wait for them.)
   */
  const startWaitingPolls = async (user: TestUser, count: number, query = '?timeout=10') => {
    const before = readsDone(user);
    const answers = Array.from({ length: count }, () => startPoll(user, query));
    await untilReadsDone(user, before + count, `${count} polls to have read and to wait`);
    return { answers };
  };
  const startWaitingPoll = async (user: TestUser, query = '?timeout=10') => {
    const { answers } = await startWaitingPolls(user, 1, query);
    return { answer: answers[0] };
  };
  const untilIdle = () =>
    until(() => {
      const stats = ctx.services.hub.stats();
      return stats.users === 0 && stats.subscribers === 0 && stats.connections === 0;
    }, 'the hub to be idle');
  return { ...fixtures, startPoll, startWaitingPolls, startWaitingPoll, untilIdle };
}

describeApi('notifications long-poll', (ctx) => {
  const { freshUser, notify, insertUnannounced, getNotification, untilDelivered, readsDone, lastTaken, untilReadsDone, startPoll, startWaitingPolls, startWaitingPoll, untilIdle } =
    pollFixtures(ctx, 24);

  it('rejects a timeout outside 1..60 or not an integer with 400 {"timeout": [...]}', async () => {
    const ann = freshUser();
    for (const value of ['0', '61', 'abc', '-1', '1.5', '']) {
      const res = await ctx.http.get(`${POLL}?timeout=${value}`).set(ann.auth).expect(400);
      expect(res.body).toEqual({ timeout: [expect.any(String)] });
    }
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
  });

  it('answers HEAD on the long-poll and SSE routes with 405 and Allow, marking nothing delivered (401 without a token)', async () => {
    const ann = freshUser();
    const waiting = await notify(ann, 'not for a HEAD');
    for (const path of [POLL, '/api/notifications/sse/']) {
      await ctx.http.head(path).expect(401);
      const res = await ctx.http.head(path).set(ann.auth).expect(405);
      expect(res.headers.allow).toBe('GET, OPTIONS');
    }
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
    const status = await ctx.http.get('/api/notifications/delivery-status/').set(ann.auth).expect(200);
    expect(status.body).toMatchObject({ total: 1, delivered: 0, undelivered: 1 });
    const res = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(200);
    expect(res.body.notifications).toEqual([wire(waiting)]);
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
    expect(Date.now() - started).toBeLessThan(1000 + SLACK_MS);
  });

  it("answers 'new_notification' as soon as one is created while waiting", async () => {
    const ann = freshUser();
    const { answer } = await startWaitingPoll(ann, '?timeout=20');
    const created = Date.now();
    const row = await notify(ann, 'while you wait', 'SUCCESS');

    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body).toEqual(newNotificationBody(row));
    // Woken by the notification, not at the end of its 20 s.
    expect(Date.now() - created).toBeLessThan(SLACK_MS);
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
    // Long enough that the 2 s looked at end well before it, also on a loaded machine.
    const { answer } = await startWaitingPoll(ann);
    const early = ctx.queryCount();
    // A query made while the poll waits would show in this time.
    await graceForStrayEvents(2000);
    expect(ctx.services.hub.stats().subscribers).toBe(1); // still waiting
    expect(ctx.queryCount()).toBe(early);

    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body).toEqual(TIMEOUT_BODY);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9950);
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
    await untilReadsDone(ann, 1, 'the poll to wait');
    expect(ctx.services.hub.stats()).toEqual({ users: 1, subscribers: 1, connections: 1 });
    controller.abort();
    expect(await aborted).toBe('AbortError');
    // The server notices the closed socket: the wait ends at once, not after 20 s.
    await untilIdle();

    const row = await notify(ann, 'nobody listening');
    await graceForStrayEvents(); // a delivery to the gone client would show in this time
    expect(await getNotification(ann, row.id)).toEqual(wire(row));

    const res = await ctx.http.get(`${POLL}?timeout=5`).set(ann.auth).expect(200);
    expect(res.body).toEqual({ status: 'immediate', notifications: [wire(row)], has_new_notifications: true });
    await untilDelivered(ann, row.id);
  });

  it('ends at once, reading nothing, for a wait whose client is already gone', async () => {
    const ann = freshUser();
    await notify(ann, 'not to be read');
    const started = Date.now();
    const result = await ctx.services.longPoll.wait(ann.id, 30_000, alreadyGone);
    expect(result).toEqual({ status: 'timeout', notifications: [] });
    expect(readsDone(ann)).toBe(0);
    // At once, not at the end of its 30 s.
    expect(Date.now() - started).toBeLessThan(SLACK_MS);
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
  });

  it('frees the slot at once for clients that left before their poll started waiting', async () => {
    const ann = freshUser();
    const { hostname, port } = new URL(await ctx.listen());
    const started = Date.now();
    const waits = vi.spyOn(ctx.services.longPoll, 'wait');
    try {
      // Each client sends its request and is gone while the server is still authenticating it.
      for (let i = 0; i < CAP; i++) {
        const socket = net.connect(Number(port), hostname);
        await new Promise((resolve) => socket.once('connect', resolve));
        const request = `GET ${POLL}?timeout=20 HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Token ${ann.token}\r\n\r\n`;
        socket.write(request, () => socket.destroy());
      }
      await until(
        () => waits.mock.settledResults.filter((result, i) => result.type !== 'incomplete' && waits.mock.calls[i][0] === ann.id).length === CAP,
        `the ${CAP} polls to have started and ended`,
      );
    } finally {
      waits.mockRestore();
    }
    await untilIdle();
    // Ended by their clients' going, well before their 20 s.
    expect(Date.now() - started).toBeLessThan(20_000 - SLACK_MS);
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
    // Not written yet, not lost yet: another poll's read leaves it out, and the poll waits.
    const second = longPoll.wait(ann.id, 20_000, stillThere);
    await untilReadsDone(ann, 2, "the second poll's first read");
    expect(lastTaken(ann)).toEqual([]);
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

  it('offers an answer again, undelivered, whose client reset the connection while it was being written', async () => {
    const ann = freshUser();
    const rows: NotificationRow[] = [];
    for (let i = 0; i < 100; i++) {
      rows.push(await notify(ann, BULKY_MESSAGE));
      await pastCreation(rows[i]); // a distinct created_at each: they are sent in creation order
    }
    const server = await serveOnUnixSocket(ctx);
    try {
      // A real client on a real socket: it sends the poll, reads the start of the answer, and is gone.
      const client = await server.send(ann, `${POLL}?timeout=5`);
      const seen = await new Promise<{ start: string; finished: boolean }>((resolve) => {
        client.once('data', (chunk: Buffer) => {
          const [res] = server.responses;
          resolve({ start: chunk.toString('latin1', 0, 15), finished: res.writableFinished });
          client.destroy();
        });
        client.resume();
      });
      expect(seen.start).toBe('HTTP/1.1 200 OK');
      // The whole answer had been written to the response, but the socket had not taken it all.
      expect(server.responses[0].writableEnded).toBe(true);
      expect(seen.finished).toBe(false);

      await until(() => server.responses[0].destroyed, 'the server to see the connection gone');
      await until(() => ctx.services.claims.size() === 0, 'the claim to be handed back');
      const status = await ctx.http.get('/api/notifications/delivery-status/').set(ann.auth).expect(200);
      expect(status.body).toMatchObject({ total: 100, delivered: 0, undelivered: 100 });

      const again = await ctx.http.get(`${POLL}?timeout=5`).set(ann.auth).expect(200);
      expect(again.body.status).toBe('immediate');
      expect(again.body.notifications.map((n: { id: string }) => n.id)).toEqual(rows.map((row) => row.id));
      await untilDelivered(ann, rows[99].id);
    } finally {
      await server.close();
    }
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

  it('wakes two concurrent polls of one user; exactly one of them gets the notification', async () => {
    const ann = freshUser();
    // 4 s: time enough for a loaded machine to create the notification before the polls end.
    const { answers } = await startWaitingPolls(ann, 2, '?timeout=4');
    const row = await notify(ann, 'for one of them');

    const bodies = (await Promise.all(answers)).map((res) => {
      expect(res.status).toBe(200);
      return res.body;
    });
    expect(bodies.filter((body) => body.status === 'new_notification')).toEqual([newNotificationBody(row)]);
    expect(bodies.filter((body) => body.status !== 'new_notification')).toEqual([TIMEOUT_BODY]);
    // Both were woken and read again; only one read took it.
    expect(readsDone(ann)).toBe(4);

    const delivered = await untilDelivered(ann, row.id);
    const list = await ctx.http.get('/api/notifications/').set(ann.auth).expect(200);
    expect(list.body).toEqual([delivered]);
    await untilIdle();

    // Two polls that start together while one is pending: one answers it at once, the other waits.
    const pending = await notify(ann, 'already there');
    const together = await Promise.all([startPoll(ann, '?timeout=1'), startPoll(ann, '?timeout=1')]);
    const immediate = together.filter((res) => res.body.status === 'immediate');
    expect(immediate.map((res) => res.body.notifications)).toEqual([[wire(pending)]]);
    expect(together.filter((res) => res.body.status !== 'immediate').map((res) => res.body)).toEqual([TIMEOUT_BODY]);
    await untilDelivered(ann, pending.id);
    await untilIdle();
  });

  it('leaves out of a read still in flight what another connection delivered meanwhile (no second copy)', async () => {
    const ann = freshUser();
    const row = await notify(ann, 'read by two');
    const { claims, notifications } = ctx.services;
    // One read is held after it has read, until another connection has taken, sent and confirmed
    // the notification: its rows predate the delivered_at, and the claim is already gone.
    const undelivered = notifications.undelivered.bind(notifications);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reads = 0;
    const spy = vi.spyOn(notifications, 'undelivered').mockImplementation(async (...args) => {
      const rows = await undelivered(...args);
      if (++reads === 1) await held;
      return rows;
    });
    try {
      const slow = claims.take(ann.id, 100);
      await until(() => reads === 1, 'the held read to have read');
      const fast = await claims.take(ann.id, 100);
      expect(fast.map((taken) => taken.id)).toEqual([row.id]);
      await claims.confirm(ann.id, [row.id]);
      release();
      expect(await slow).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    expect(claims.size()).toBe(0);
    // Later reads see it delivered in the database.
    expect(await claims.take(ann.id, 100)).toEqual([]);
  });

  it(`caps open polls per user at ${CAP} with 429 + Retry-After; other users are unaffected`, async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    // 6 s: time enough for a loaded machine to make the checks below while all of them are open.
    const { answers: polls } = await startWaitingPolls(ann, CAP, '?timeout=6');
    expect(ctx.services.hub.stats()).toEqual({ users: 1, subscribers: CAP, connections: CAP });

    const refused = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toEqual({ detail: expect.stringContaining(String(CAP)) });
    expect(ctx.services.hub.stats().connections).toBe(CAP);

    const forBob = await notify(bob, 'bob is not capped');
    const bobs = await ctx.http.get(`${POLL}?timeout=1`).set(bob.auth).expect(200);
    expect(bobs.body).toEqual({ status: 'immediate', notifications: [wire(forBob)], has_new_notifications: true });

    // One notification wakes all of ann's waits: exactly one gets it, the others wait out their time.
    const row = await notify(ann, 'wake them all');
    const answers = await Promise.all(polls);
    expect(answers.map((res) => res.status)).toEqual(Array(CAP).fill(200));
    expect(answers.filter((res) => res.body.status === 'new_notification').map((res) => res.body)).toEqual([newNotificationBody(row)]);
    expect(answers.filter((res) => res.body.status !== 'new_notification').map((res) => res.body)).toEqual(Array(CAP - 1).fill(TIMEOUT_BODY));
    await untilIdle();
    await untilDelivered(ann, row.id);

    const again = await Promise.all(Array.from({ length: CAP }, () => startPoll(ann, '?timeout=1')));
    expect(again.map((res) => res.status)).toEqual(Array(CAP).fill(200));
    await untilIdle();
  });

  it("never answers a user's poll with another user's notifications", async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const started = Date.now();
    const { answer: bobsPoll } = await startWaitingPoll(bob, '?timeout=1');
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

  it('answers a waiting poll when POST delivery-status/ (retry) is asked for an undelivered notification', async () => {
    const ann = freshUser();
    const { answer } = await startWaitingPoll(ann, '?timeout=20');
    // Written without a wake-up (as one whose wake-up was lost): only the retry tells the poll.
    const row = await insertUnannounced(ann, 'announced by the retry');
    expect(readsDone(ann)).toBe(1); // still waiting after its first read, which found nothing

    const retried = await ctx.http.post('/api/notifications/delivery-status/').set(ann.auth).send({ notification_ids: [row.id] }).expect(200);
    expect(retried.body).toEqual({ message: 'Retry initiated for 1 notifications', retry_count: 1 });
    const res = await answer;
    expect(res.body).toEqual(newNotificationBody(row));
    await untilDelivered(ann, row.id);

    // A retry without ids covers all the user's undelivered ones.
    const { answer: next } = await startWaitingPoll(ann, '?timeout=20');
    const another = await insertUnannounced(ann, 'announced by a retry of all');
    await ctx.http.post('/api/notifications/delivery-status/').set(ann.auth).expect(200);
    expect((await next).body).toEqual(newNotificationBody(another));
    await untilDelivered(ann, another.id);
    await untilIdle();
  });

  it('answers a waiting poll 401 once its token is logged out, not what comes after; the user’s other session’s poll goes on', async () => {
    const ann = freshUser();
    const other = await anotherSession(ctx, ann);
    const { answer: revoked } = await startWaitingPoll(ann, '?timeout=20');
    const { answer: kept } = await startWaitingPoll(other, '?timeout=20');
    await ctx.http.post('/auth/token/logout/').set(ann.auth).expect(204);
    const refused = await revoked;
    expect([refused.status, refused.body]).toEqual([401, { detail: 'Invalid token.' }]);
    const row = await notify(ann, 'after the logout');
    expect((await kept).body).toEqual(newNotificationBody(row));
    await untilDelivered(other, row.id);
    await untilIdle();
  });

  it('answers a waiting poll 401 when another session revokes its token, and when that one logs out everywhere', async () => {
    const ann = freshUser();
    const other = await anotherSession(ctx, ann);
    const sessions = (await ctx.http.get('/auth/tokens/').set(ann.auth).expect(200)).body as Array<{ id: number; current: boolean }>;
    const { answer: revoked } = await startWaitingPoll(ann, '?timeout=20');
    await ctx.http.delete(`/auth/tokens/${sessions.find((session) => session.current)!.id}/`).set(other.auth).expect(204);
    expect([(await revoked).status, (await revoked).body]).toEqual([401, { detail: 'Invalid token.' }]);
    const { answer: everywhere } = await startWaitingPoll(other, '?timeout=20');
    await ctx.http.post('/auth/token/logout_all/').set(other.auth).expect(204);
    expect([(await everywhere).status, (await everywhere).body]).toEqual([401, { detail: 'Invalid token.' }]);
    await untilIdle();
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
    const deadline = Date.now() + 25_000;
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

    /** The client has shown `count` and its next poll waits (its last read found nothing). */
    const untilShownAndWaiting = (count: number) =>
      until(() => shown.length === count && lastTaken(ann)?.length === 0, `the client to show ${count} and poll again`);

    try {
      const first = await notify(ann, 'before the client starts', 'INFO');
      void pollNotifications();
      await untilShownAndWaiting(1);
      const second = await notify(ann, 'while it waits', 'WARNING');
      await untilShownAndWaiting(2);
      const third = await notify(ann, 'a bit later', 'ERROR');

      await until(() => stopped, 'the client to receive 3 notifications');
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
    } finally {
      stop();
    }
  });
});

/** The bus of the suite running now (describeApi runs the dialects one after the other). */
let switchableBus: SwitchableBus;

describeApi(
  'notifications long-poll while the bus is down, with the real-time defaults',
  (ctx) => {
    const { freshUser, insertUnannounced, startWaitingPoll, untilDelivered, untilIdle } = pollFixtures(ctx, 2);

    it('answers a waiting poll 401 once the bus is back when its token was revoked while the bus was down (the message was lost)', async () => {
      const ann = freshUser();
      const { answer } = await startWaitingPoll(ann, '?timeout=30');
      switchableBus.setHealthy(false);
      try {
        // Revoked while no instance could hear of it.
        const { db, t } = ctx.database.store;
        await db.delete(t.authTokens).where(eq(t.authTokens.userId, ann.id));
      } finally {
        switchableBus.setHealthy(true);
      }
      const refused = await answer;
      expect([refused.status, refused.body]).toEqual([401, { detail: 'Invalid token.' }]);
      await untilIdle();
    });

    it(`looks in the database every ${REALTIME_DEFAULTS.fallbackPollMs} ms for undelivered notifications of waiting polls`, async () => {
      expect(REALTIME_DEFAULTS.fallbackPollMs).toBe(3000);
      // Built without overrides: these are what production runs with.
      expect(ctx.services.realtime).toEqual(REALTIME_DEFAULTS);
      const ann = freshUser();
      const { answer } = await startWaitingPoll(ann, '?timeout=30');
      const lookups = vi.spyOn(ctx.services.notifications, 'usersWithUndelivered');
      // Only the hub's interval is faked: sockets, the poll's own timeout and the database run as they do.
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      try {
        switchableBus.setHealthy(false);
        // Nothing announces it: only the fallback poll can find it.
        const row = await insertUnannounced(ann, 'found by the fallback poll');
        vi.advanceTimersByTime(REALTIME_DEFAULTS.fallbackPollMs - 1);
        expect(lookups).not.toHaveBeenCalled();
        vi.advanceTimersByTime(1);
        expect(lookups).toHaveBeenCalledTimes(1);
        expect(lookups).toHaveBeenCalledWith([ann.id]);
        expect((await answer).body).toEqual(newNotificationBody(row));
        await untilDelivered(ann, row.id);
      } finally {
        switchableBus.setHealthy(true);
        vi.useRealTimers();
        lookups.mockRestore();
      }
      await untilIdle();
    });
  },
  {
    bus: () => {
      switchableBus = new SwitchableBus();
      return switchableBus;
    },
  },
);

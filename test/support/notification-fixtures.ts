import { randomUUID } from 'node:crypto';
import http, { type ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll } from 'vitest';
import { createApp } from '../../server/app';
import type { DeliveryClaims } from '../../server/notifications/delivery-claims';
import type { WhenGone } from '../../server/notifications/long-poll';
import type { NotificationRow, NotificationType } from '../../server/notifications/notifications.service';
import type { ApiContext, TestUser } from './api';
import { until } from './waiting';

/** For LongPoll.wait called directly: a client that stays. */
export const stillThere: WhenGone = () => () => {};
/** For LongPoll.wait called directly: a client gone before the poll began. */
export const alreadyGone: WhenGone = (listener) => {
  listener();
  return () => {};
};

/** The reads of undelivered notifications that long-polls and streams have completed, per user. */
export interface ReadWatch {
  /** How many reads of the user's undelivered notifications have completed. */
  count(userId: number): number;
  /** The ids each completed read of the user's took, oldest read first. */
  taken(userId: number): string[][];
}

/**
 * Watches `claims.take`, the one read every long-poll and stream makes before it waits and again
 * each time it is woken. Once a poll's or stream's first read has completed, it waits in the hub:
 * a notification created after that has to wake it (it cannot just show up in that read) — what a
 * test waits for instead of sleeping "long enough for the read to finish".
 */
export function watchReads(claims: DeliveryClaims): ReadWatch {
  const done = new Map<number, string[][]>();
  const take = claims.take.bind(claims);
  claims.take = async (userId, limit) => {
    const rows = await take(userId, limit);
    done.set(userId, [...(done.get(userId) ?? []), rows.map((row) => row.id)]);
    return rows;
  };
  return {
    count: (userId) => done.get(userId)?.length ?? 0,
    taken: (userId) => done.get(userId) ?? [],
  };
}

/**
 * What the real-time suites share: a pool of users made once (a user of its own for each test, so
 * no notification of another test is pending for it), and creating and inspecting notifications.
 */
export function notificationFixtures(ctx: ApiContext, userCount: number) {
  let users: TestUser[] = [];
  let next = 0;
  let reads: ReadWatch;
  beforeAll(async () => {
    reads = watchReads(ctx.services.claims);
    users = await Promise.all(Array.from({ length: userCount }, () => ctx.createUser()));
  }, 60_000);

  const freshUser = () => {
    if (next >= users.length) throw new Error('create more users in beforeAll');
    return users[next++];
  };
  const notify = async (user: TestUser, message: string, type: NotificationType = 'INFO') => {
    const [row] = await ctx.services.notifications.notify([user.id], { type, message });
    return row;
  };
  /**
   * A notification written straight to the table: nothing wakes the user's waiting connections for
   * it (as for one whose wake-up was lost), until something else does — a retry, a fallback poll.
   */
  const insertUnannounced = async (user: TestUser, message: string): Promise<NotificationRow> => {
    const { store } = ctx.database;
    const row = { id: randomUUID(), userId: user.id, type: 'INFO', message, createdAt: new Date(), deliveredAt: null, readAt: null };
    await store.insertAll(store.t.notifications, [row]);
    return row;
  };
  const getNotification = async (user: TestUser, id: string) =>
    (await ctx.http.get(`/api/notifications/${id}/`).set(user.auth).expect(200)).body;
  const untilDelivered = (user: TestUser, id: string) =>
    until(async () => {
      const body = await getNotification(user, id);
      return body.delivered === true && body;
    }, `notification ${id} to be delivered`);
  /** How many reads of the user's undelivered notifications have completed (see watchReads). */
  const readsDone = (user: TestUser) => reads.count(user.id);
  /** The ids each completed read of the user's took, oldest read first. */
  const taken = (user: TestUser) => reads.taken(user.id);
  /** The ids the user's last completed read took (empty: it found nothing to send, and waits). */
  const lastTaken = (user: TestUser) => reads.taken(user.id).at(-1);
  /** Waits until `count` reads of the user's have completed in all (`readsDone` sampled before, plus the new ones). */
  const untilReadsDone = (user: TestUser, count: number, what: string) => until(() => readsDone(user) >= count, what);

  return { freshUser, notify, insertUnannounced, getNotification, untilDelivered, readsDone, taken, lastTaken, untilReadsDone };
}

/**
 * The suite's app (its services, so its claims and hub) served once more, on a Unix socket, with
 * the server side of every response in reach. A Unix socket holds about 200 KB in flight
 * (net.core.wmem_default) where loopback TCP takes megabytes: a client that stops reading really
 * holds a large answer up in the middle of its write, as a slow client on a real network does —
 * nothing is simulated.
 */
export async function serveOnUnixSocket(ctx: ApiContext) {
  const app = createApp({ store: ctx.database.store, logger: pino({ level: 'silent' }), rateLimits: true }, ctx.services);
  const server = http.createServer(app);
  const responses: ServerResponse[] = [];
  server.on('request', (_req, res) => responses.push(res));
  const path = join(tmpdir(), `punchclock-${process.pid}-${randomUUID()}.sock`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return {
    /** The server side of each request, in the order they came. */
    responses,
    /** A raw client that has sent GET `target` with the user's token, and reads nothing yet (paused). */
    async send(user: TestUser, target: string): Promise<net.Socket> {
      const socket = net.connect(path);
      socket.on('error', () => {});
      socket.pause();
      await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token ${user.token}\r\n\r\n`);
      return socket;
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The largest message there is: 2,000 characters that JSON writes as six bytes each, so that 100 of
 * them (one long-poll answer, one stream batch) make 1.2 MB on the wire.
 */
export const BULKY_MESSAGE = '\u0001'.repeat(2000);

import { beforeAll } from 'vitest';
import type { WhenGone } from '../../server/notifications/long-poll';
import type { NotificationType } from '../../server/notifications/notifications.service';
import type { ApiContext, TestUser } from './api';
import { until } from './waiting';

/** For LongPoll.wait called directly: a client that stays. */
export const stillThere: WhenGone = () => () => {};
/** For LongPoll.wait called directly: a client gone before the poll began. */
export const alreadyGone: WhenGone = (listener) => {
  listener();
  return () => {};
};

/**
 * What the real-time suites share: a pool of users made once (a user of its own for each test, so
 * no notification of another test is pending for it), and creating and inspecting notifications.
 */
export function notificationFixtures(ctx: ApiContext, userCount: number) {
  let users: TestUser[] = [];
  let next = 0;
  beforeAll(async () => {
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
  const getNotification = async (user: TestUser, id: string) =>
    (await ctx.http.get(`/api/notifications/${id}/`).set(user.auth).expect(200)).body;
  const untilDelivered = (user: TestUser, id: string) =>
    until(async () => {
      const body = await getNotification(user, id);
      return body.delivered === true && body;
    }, `notification ${id} to be delivered`);

  return { freshUser, notify, getNotification, untilDelivered };
}

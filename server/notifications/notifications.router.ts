import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import type { IdempotencyService } from '../idempotency/idempotency.service';
import { pagedAnswer } from '../pagination/link-header';
import { answerLongPoll, type LongPollAnswerDeps } from './long-poll-answer';
import { serializeNotification, serializeSummary } from './notification.serializer';
import type { NotificationsService } from './notifications.service';

const s = initServer();

// The SSE route is a plain express handler (see sse.ts); this router serves the rest.
const { sse: _sse, ...served } = contract.notifications;
export const servedNotificationsContract = served;

export interface NotificationsDeps extends LongPollAnswerDeps {
  notifications: NotificationsService;
  idempotency: IdempotencyService;
}

export const notificationsRouter = (deps: NotificationsDeps) => {
  const { notifications, idempotency } = deps;
  return s.router(servedNotificationsContract, {
    list: async ({ query, req, res }) => pagedAnswer(await notifications.list(currentUser(req).id, query), serializeNotification, req, res),
    create: async ({ body, headers, req }) => {
      const user = currentUser(req);
      const key = headers['idempotency-key'];
      const sent = key
        ? await idempotency.once(user.id, key, body, (tx) => notifications.sendAsAdminWithin(tx, user, body), (made) => notifications.announceSent(body, made))
        : await notifications.sendAsAdmin(user, body);
      return { status: 201, body: sent };
    },
    longPoll: async ({ query, req, res }) => ({
      status: 200,
      body: await answerLongPoll(deps, { userId: currentUser(req).id, authorization: req.headers.authorization }, query.timeout * 1000, res, (error) =>
        req.log.error({ err: error }, 'marking delivered failed'),
      ),
    }),
    deliveryStatus: async ({ query, req }) => {
      const status = await notifications.deliveryStatus(currentUser(req).id, query.delivered);
      return {
        status: 200,
        body: {
          total: status.total,
          delivered: status.delivered,
          undelivered: status.undelivered,
          delivery_rate: status.deliveryRate,
          recent_undelivered: status.recentUndelivered.map(serializeSummary),
          undelivered_notifications: status.undeliveredNotifications.map(serializeSummary),
        },
      };
    },
    retryDelivery: async ({ body, req }) => {
      const count = await notifications.retry(currentUser(req).id, body?.notification_ids);
      return { status: 200, body: { message: `Retry initiated for ${count} notifications`, retry_count: count } };
    },
    sendTest: async ({ body, req }) => {
      const [row] = await notifications.notify([currentUser(req).id], body);
      return {
        status: 201,
        body: { id: row.id, message: 'Test notification sent', notification: serializeNotification(row) },
      };
    },
    unreadCount: async ({ req }) => ({
      status: 200,
      body: { unread: await notifications.unreadCount(currentUser(req).id) },
    }),
    markAllRead: async ({ req }) => ({
      status: 200,
      body: { updated: await notifications.markAllRead(currentUser(req).id) },
    }),
    acknowledge: async ({ params, req }) => ({
      status: 200,
      body: withMessage('Notification delivery acknowledged', await notifications.acknowledge(currentUser(req).id, params.id)),
    }),
    markDelivered: async ({ params, req }) => ({
      status: 200,
      body: withMessage('Notification marked as delivered', await notifications.markDelivered(currentUser(req).id, params.id)),
    }),
    markRead: async ({ params, req }) => ({
      status: 200,
      body: withMessage('Notification marked as read', await notifications.markRead(currentUser(req).id, params.id)),
    }),
    get: async ({ params, req }) => ({
      status: 200,
      body: serializeNotification(await notifications.get(currentUser(req).id, params.id)),
    }),
  });
};

const withMessage = (message: string, row: Parameters<typeof serializeNotification>[0]) => ({
  message,
  notification: serializeNotification(row),
});

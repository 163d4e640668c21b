import { initServer } from '@ts-rest/express';
import { contract } from '../../contract';
import { currentUser } from '../auth/authenticate';
import { whenClientGone, whenResponseSettles } from '../http/response-lifecycle';
import type { IdempotencyService } from '../idempotency/idempotency.service';
import type { Metrics } from '../metrics/metrics';
import { pagedAnswer } from '../pagination/link-header';
import type { DeliveryClaims } from './delivery-claims';
import type { LongPoll, LongPollResult } from './long-poll';
import { serializeNotification, serializeSummary } from './notification.serializer';
import type { NotificationsService } from './notifications.service';

const s = initServer();

// The SSE route is a plain express handler (see sse.ts); this router serves the rest.
const { sse: _sse, ...served } = contract.notifications;
export const servedNotificationsContract = served;

export interface NotificationsDeps {
  notifications: NotificationsService;
  longPoll: LongPoll;
  claims: DeliveryClaims;
  idempotency: IdempotencyService;
  metrics: Metrics;
}

export const notificationsRouter = ({ notifications, longPoll, claims, idempotency, metrics }: NotificationsDeps) =>
  s.router(servedNotificationsContract, {
    list: async ({ query, req, res }) => pagedAnswer(await notifications.list(currentUser(req).id, query), serializeNotification, req, res),
    create: async ({ body, headers, req }) => {
      const user = currentUser(req);
      const send = async () => {
        const { created, rows } = await notifications.sendAsAdmin(user, body);
        // For all users: the count alone (a list of 100,000 ids would be megabytes, kept again for the idempotency key).
        return rows ? { created, ids: rows.map((row) => row.id) } : { created };
      };
      const key = headers['idempotency-key'];
      return { status: 201, body: key ? await idempotency.once(user.id, key, body, send) : await send() };
    },
    longPoll: async ({ query, req, res }) => {
      const user = currentUser(req);
      const result = await longPoll.wait(user.id, query.timeout * 1000, (gone) => whenClientGone(res, gone));
      const ids = result.notifications.map((row) => row.id);
      if (ids.length > 0) {
        // Delivered means the answer reached the socket: a client gone before that gets them again.
        whenResponseSettles(res, {
          written: () => {
            // An error answer written in its place (the body failed to serialize) carried nothing.
            if (res.statusCode !== 200) return claims.abandon(user.id, ids);
            claims.confirm(user.id, ids).then(
              () => metrics.delivered('long-poll', result.notifications.map((row) => row.createdAt)),
              (error) => req.log.error({ err: error }, 'marking delivered failed'),
            );
          },
          lost: () => claims.abandon(user.id, ids),
        });
      }
      return { status: 200, body: serializeLongPoll(result) };
    },
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

const withMessage = (message: string, row: Parameters<typeof serializeNotification>[0]) => ({
  message,
  notification: serializeNotification(row),
});

function serializeLongPoll(result: LongPollResult) {
  const notifications = result.notifications.map(serializeNotification);
  switch (result.status) {
    case 'immediate':
      return { status: result.status, notifications, has_new_notifications: true };
    case 'new_notification':
      return { status: result.status, notifications, has_new_notifications: true, message: 'New notification received' };
    case 'timeout':
      return {
        status: result.status,
        notifications,
        has_new_notifications: false,
        message: 'No new notifications in the specified time period',
      };
  }
}

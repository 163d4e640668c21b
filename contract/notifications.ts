import { extendApi } from '@anatine/zod-openapi';
import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, BoundedArray, BooleanFilter, Detail, errors, IdField, PageLimit, Timestamp, type RouteAccess } from './common';

const c = initContract();

export const NOTIFICATION_TYPES = ['INFO', 'WARNING', 'ERROR', 'SUCCESS', 'CRITICAL', 'OTHER'] as const;
export const NotificationType = z.enum(NOTIFICATION_TYPES);
export const NotificationMessage = z.string().trim().min(1).max(2000);
const NotificationId = extendApi(z.string().uuid(), { example: '550e8400-e29b-41d4-a716-446655440000' });

export const Notification = z.object({
  id: NotificationId,
  type: NotificationType,
  message: z.string(),
  created_at: Timestamp,
  delivered: extendApi(z.boolean(), { description: 'True once delivered_at is set: a client really received it.' }),
  delivered_at: Timestamp.nullable(),
  read: z.boolean(),
});

const NotificationSummary = Notification.pick({ id: true, message: true, created_at: true, type: true });

export const LONG_POLL_MAX_NOTIFICATIONS = 100;

const LongPollResponse = extendApi(
  z.object({
    status: z.enum(['immediate', 'new_notification', 'timeout']),
    notifications: z.array(Notification),
    has_new_notifications: z.boolean(),
    message: z.string().optional(),
  }),
  {
    description:
      '`immediate`: undelivered notifications were waiting; `new_notification`: one arrived while waiting; ' +
      `\`timeout\`: none arrived in time. At most ${LONG_POLL_MAX_NOTIFICATIONS} per response, oldest first.`,
  },
);

const WithNotification = (example: string) =>
  z.object({ message: extendApi(z.string(), { example }), notification: Notification });

const AlreadyAcknowledged = extendApi(z.object({ error: z.string() }), {
  example: { error: 'Notification already acknowledged' },
});

const IdParams = z.object({ id: NotificationId });

const CreateNotifications = z
  .object({
    user_ids: extendApi(BoundedArray(IdField, { min: 1, max: 10_000 }), {
      description: 'The recipients; or send `all: true` instead.',
    }),
    all: z.literal(true),
    type: NotificationType,
    message: NotificationMessage,
  })
  .partial({ user_ids: true, all: true })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.user_ids === undefined) === (body.all === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'Give either "user_ids" or "all": true.' });
    }
  });

export const notificationsContract = c.router(
  {
    list: {
      method: 'GET',
      path: '/api/notifications/',
      summary: "The user's notifications, newest first",
      description:
        'A JSON array. When there are more, the `Link` header holds the next page: `<…?cursor=…>; rel="next"`.',
      query: z
        .object({
          delivered: BooleanFilter.optional(),
          read: BooleanFilter.optional(),
          limit: PageLimit(50, 100),
          cursor: z.string().max(200).optional(),
        })
        .strict(),
      responses: { 200: z.array(Notification), ...errors.badRequest },
    },
    create: {
      method: 'POST',
      path: '/api/notifications/',
      summary: 'Create notifications for some users or for all (admins only)',
      metadata: { adminOnly: true } as const satisfies RouteAccess,
      description:
        'An `Idempotency-Key` header makes a retry safe: the same key from the same admin within 24 hours ' +
        'returns the first answer and creates nothing.',
      headers: z.object({ 'idempotency-key': z.string().min(1).max(200).optional() }),
      body: CreateNotifications,
      responses: {
        201: z.object({
          created: z.number().int(),
          ids: extendApi(z.array(NotificationId), { description: 'The new notifications, one per listed user; absent for `all`.' }).optional(),
        }),
        ...errors.badRequest,
        ...errors.forbidden,
        409: Detail,
      },
    },
    longPoll: {
      method: 'GET',
      path: '/api/notifications/long-poll/',
      summary: 'Wait for undelivered notifications (recommended transport)',
      description:
        'Answers at once when undelivered notifications exist, else when one arrives, else after `timeout` ' +
        'seconds. The notifications of a response are marked delivered once it has been written to the socket; ' +
        'a client that disconnects first gets them again on its next poll.',
      query: z.object({ timeout: z.coerce.number().int().min(1).max(60).default(30) }).strict(),
      // 429 (the user's open connections) and 503 (the database unavailable) come with Retry-After,
      // which a client's loop waits out (the SDK's subscribe does): declared so that it can.
      responses: { 200: LongPollResponse, ...errors.badRequest, ...errors.tooManyRequests, 503: Detail },
    },
    sse: {
      method: 'GET',
      path: '/api/notifications/sse/',
      summary: 'Server-Sent Events stream of notifications',
      description:
        'Sends the undelivered notifications, then new ones as they are created, each as `id: <id>` and ' +
        '`data: <notification JSON>`; a `: heartbeat` comment every 15 s. A notification is marked delivered ' +
        'once its event has been written. `Last-Event-ID` on reconnect confirms that event as received.',
      headers: z.object({ 'last-event-id': z.string().optional() }),
      responses: {
        200: c.otherResponse({ contentType: 'text/event-stream', body: z.string() }),
        ...errors.tooManyRequests,
      },
    },
    deliveryStatus: {
      method: 'GET',
      path: '/api/notifications/delivery-status/',
      summary: 'Delivery statistics',
      description:
        'With `delivered`, every figure and list describes only the notifications that match it. ' +
        '`delivery_rate` is a percentage with one decimal; with no notifications it is 100.0 (nothing is undelivered).',
      query: z.object({ delivered: BooleanFilter.optional() }).strict(),
      responses: {
        200: z.object({
          total: z.number().int(),
          delivered: z.number().int(),
          undelivered: z.number().int(),
          delivery_rate: z.number(),
          recent_undelivered: extendApi(z.array(NotificationSummary), { description: 'The newest 10 undelivered.' }),
          undelivered_notifications: extendApi(z.array(NotificationSummary), {
            description: 'The legacy list: the newest 100 undelivered.',
          }),
        }),
        ...errors.badRequest,
      },
    },
    retryDelivery: {
      method: 'POST',
      path: '/api/notifications/delivery-status/',
      summary: 'Push undelivered notifications to live connections again',
      description: 'Empty or missing `notification_ids` retries all undelivered. Ids that are not the user’s or are already delivered are not counted.',
      body: z
        .object({ notification_ids: BoundedArray(z.string().uuid(), { max: 1000 }).optional() })
        .strict()
        .optional(),
      responses: {
        200: z.object({
          message: extendApi(z.string(), { example: 'Retry initiated for 3 notifications' }),
          retry_count: z.number().int(),
        }),
        ...errors.badRequest,
      },
    },
    sendTest: {
      method: 'POST',
      path: '/api/notifications/test/',
      summary: 'Send a test notification to oneself',
      body: z.object({ message: NotificationMessage, type: NotificationType }).strict(),
      responses: {
        201: z.object({ id: NotificationId, message: z.string(), notification: Notification }),
        ...errors.badRequest,
      },
    },
    unreadCount: {
      method: 'GET',
      path: '/api/notifications/unread-count/',
      summary: 'How many notifications are unread',
      responses: { 200: z.object({ unread: z.number().int() }) },
    },
    markAllRead: {
      method: 'POST',
      path: '/api/notifications/mark_all_read/',
      summary: 'Mark every notification read',
      body: c.noBody(),
      responses: { 200: z.object({ updated: z.number().int() }) },
    },
    acknowledge: {
      method: 'POST',
      path: '/api/notifications/:id/acknowledge/',
      summary: 'Confirm delivery by hand (fallback when real-time delivery fails)',
      pathParams: IdParams,
      body: c.noBody(),
      responses: {
        200: WithNotification('Notification delivery acknowledged'),
        400: AlreadyAcknowledged,
        ...errors.notFound,
      },
    },
    markDelivered: {
      method: 'POST',
      path: '/api/notifications/:id/mark_delivered/',
      summary: 'Mark delivered (the first delivered_at is kept)',
      pathParams: IdParams,
      body: c.noBody(),
      responses: { 200: WithNotification('Notification marked as delivered'), ...errors.notFound },
    },
    markRead: {
      method: 'POST',
      path: '/api/notifications/:id/mark_read/',
      summary: 'Mark read',
      pathParams: IdParams,
      body: c.noBody(),
      responses: { 200: WithNotification('Notification marked as read'), ...errors.notFound },
    },
    // Last: its `:id` would otherwise swallow the fixed paths above.
    get: {
      method: 'GET',
      path: '/api/notifications/:id/',
      summary: 'One notification',
      pathParams: IdParams,
      responses: { 200: Notification, ...errors.notFound },
    },
  },
  { commonResponses: authenticatedErrors },
);

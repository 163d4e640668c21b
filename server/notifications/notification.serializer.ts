import type { NotificationRow, NotificationType } from './notifications.service';

// The type column only ever holds a NotificationType: the contract admits nothing else.
const typeOf = (row: NotificationRow) => row.type as NotificationType;

export const serializeNotification = (row: NotificationRow) => ({
  id: row.id,
  type: typeOf(row),
  message: row.message,
  created_at: row.createdAt.toISOString(),
  delivered: row.deliveredAt !== null,
  delivered_at: row.deliveredAt?.toISOString() ?? null,
  read: row.readAt !== null,
});

export const serializeSummary = (row: NotificationRow) => ({
  id: row.id,
  message: row.message,
  created_at: row.createdAt.toISOString(),
  type: typeOf(row),
});

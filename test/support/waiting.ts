import type { NotificationRow } from '../../server/notifications/notifications.service';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the clock has passed `row`'s created_at: the next one is strictly newer. */
export async function pastCreation(row: NotificationRow): Promise<void> {
  while (Date.now() <= row.createdAt.getTime()) await sleep(1);
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 3000,
): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The wire form of a notification row, as the API sends it before it is marked delivered. */
export const wire = (row: NotificationRow) => ({
  id: row.id,
  type: row.type,
  message: row.message,
  created_at: row.createdAt.toISOString(),
  delivered: false,
  delivered_at: null,
  read: false,
});

import type { NotificationRow } from '../../server/notifications/notifications.service';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What a loaded machine (CI runners, two cores shared with other work) may add to a timer or a round
 * trip: the margin of every timing upper bound. Lower bounds need none: timers never fire early.
 */
export const SLACK_MS = 5000;

/** How long `until` waits by default: long enough for a loaded machine, short of the test timeout. */
export const UNTIL_TIMEOUT_MS = 10_000;

/**
 * Only before a negative assertion ("nothing more arrived", "still not delivered"): gives a wrong
 * event the chance to happen. Never what a passing test waits for — wait on a condition (`until`).
 */
export const graceForStrayEvents = (ms = 300) => sleep(ms);

/** Waits until the clock has passed `row`'s created_at: the next one is strictly newer. */
export async function pastCreation(row: NotificationRow): Promise<void> {
  await pastTime(row.createdAt.getTime());
}

/** Waits until Date.now() is past `ms` (a timestamp), so that a later timestamp differs from it. */
export async function pastTime(ms: number): Promise<void> {
  while (Date.now() <= ms) await sleep(1);
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = UNTIL_TIMEOUT_MS,
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

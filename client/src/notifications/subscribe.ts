import type { z } from 'zod';
import { notificationsContract, type Notification as NotificationSchema } from '../../../contract/notifications';
import { UnauthorizedError, UnexpectedAnswerError } from '../errors';
import { detailOf, WAITING_REQUEST_CACHE, type ApiClient } from '../api-client';
import { Backoff, DEFAULT_BACKOFF, retryAfterMs, sleep, type BackoffOptions } from './backoff';
import { readEvents, type StreamOpener } from './event-stream';
import { RecentIds } from './recent-ids';

export type Notification = z.infer<typeof NotificationSchema>;

/** A real-time transport: long-polls (recommended) or a Server-Sent Events stream. */
export type Transport = 'long-poll' | 'sse';

/** How notifications reach the app: in real time by a transport, or by listing and acknowledging. */
export type DeliveryMode = Transport | 'fallback';

export interface SubscribeOptions {
  /** Each batch, oldest first, never a notification twice; the next batch waits for it to settle. */
  onNotifications(batch: Notification[]): void | Promise<void>;
  /** Every failure, also those the loop recovers from; an UnauthorizedError ends the subscription. */
  onError?(error: unknown): void;
  onModeChange?(mode: DeliveryMode): void;
  /** Ends the subscription when aborted (as close() does). */
  signal?: AbortSignal;
  /** Seconds a long-poll waits on the server, 1–60 (default 30); subscribe throws a RangeError for another. */
  timeout?: number;
  /**
   * 'long-poll' (default) or 'sse': a stream over fetch (so the token goes in a header, which
   * EventSource cannot send), resumed with Last-Event-ID after a cut.
   */
  transport?: Transport;
  /** Failed long-polls (or stream connections) in a row before listing and acknowledging instead (default 3). */
  failuresBeforeFallback?: number;
  /** Waits after failures (default 1 s doubling to 30 s, with jitter). */
  backoff?: BackoffOptions;
  /** In fallback mode, how often undelivered notifications are listed (default 5 s). */
  fallbackIntervalMs?: number;
  /**
   * In a browser, the tabs of one origin and user share one connection (default true): one tab
   * holds it and relays each batch to the others. Not in Node, nor where Web Locks are missing.
   */
  shareAcrossTabs?: boolean;
}

export interface Subscription {
  /** Stops the loop and aborts its request; `done` settles once it has. */
  close(): void;
  readonly mode: DeliveryMode;
  /** Settles when the subscription has ended (close, abort, or a refused token). */
  readonly done: Promise<void>;
}

/** The longest Retry-After the loop honours: a server asking for more is asked again sooner. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * How long past its `timeout` a long-poll may stay unanswered, and how long a stream may stay silent
 * (the server sends a heartbeat every 15 s), before the connection counts as dead: a laptop that
 * slept, a proxy that dropped it without a word. It is cut and counts as a failure.
 */
const LONG_POLL_GRACE_MS = 15_000;
const STREAM_SILENCE_MS = 45_000;

/** What the loop does when an option is not given (client/README.md documents these). */
const DEFAULTS = {
  timeout: 30,
  transport: 'long-poll',
  failuresBeforeFallback: 3,
  backoff: DEFAULT_BACKOFF,
  fallbackIntervalMs: 5000,
} as const satisfies Partial<SubscribeOptions>;

/**
 * Delivers a user's notifications to the app as SPEC.md recommends: long-polls one after another
 * (at once after an answer, after a backoff with jitter after a failure, after `Retry-After` on 429
 * and 503). When real-time delivery keeps failing (a proxy that cuts long requests), it switches to
 * listing the undelivered ones and acknowledging each once the app has taken it — never what came
 * by long-poll, which the server marked delivered itself — and keeps trying to return.
 */
export function subscribeToNotifications(api: ApiClient, openStream: StreamOpener, options: SubscribeOptions): Subscription {
  checkSubscribeOptions(options);
  const loop = new DeliveryLoop(api, openStream, options);
  return {
    close: () => loop.stop(),
    get mode() {
      return loop.mode;
    },
    done: loop.run(),
  };
}

/**
 * Throws a RangeError for a `timeout` the server refuses (the long-poll's own bounds, 1–60 whole
 * seconds): every long-poll would be answered 400, which no backoff or fallback mends.
 */
export function checkSubscribeOptions({ timeout }: SubscribeOptions): void {
  if (timeout !== undefined && !notificationsContract.longPoll.query.shape.timeout.safeParse(timeout).success) {
    throw new RangeError(`The long-poll timeout is a whole number of seconds from 1 to 60, not ${timeout}.`);
  }
}

/** The cursor of a list's next page, from its `Link: <…?cursor=…>; rel="next"` header (the URL is relative). */
function nextCursorOf(link: string | null): string | undefined {
  const next = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  return (next && new URL(next, 'http://relative.invalid').searchParams.get('cursor')) || undefined;
}

class DeliveryLoop {
  mode: DeliveryMode;
  private readonly transport: Transport;
  private readonly stopping = new AbortController();
  /** The id of the last event the stream handed over: sent back on reconnecting, which confirms it. */
  private lastEventId: string | undefined;
  /** The stream's reconnect hint (`retry:`), after a stream the server ended. */
  private reconnectMs = 3000;
  private readonly seen = new RecentIds();
  /** The batch the app threw on: handed again with the next (see hand). */
  private failedOn: Notification[] = [];
  private readonly backoff: Backoff;
  private failuresInARow = 0;

  constructor(
    private readonly api: ApiClient,
    private readonly openStream: StreamOpener,
    private readonly options: SubscribeOptions,
  ) {
    this.transport = options.transport ?? DEFAULTS.transport;
    this.mode = this.transport;
    this.backoff = new Backoff(options.backoff ?? DEFAULTS.backoff);
    // Removed once the loop stops, however it stops: an app's long-lived signal does not hold it.
    options.signal?.addEventListener('abort', () => this.stop(), { once: true, signal: this.stopping.signal });
    if (options.signal?.aborted) this.stop();
  }

  stop(): void {
    this.stopping.abort();
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.mode === 'fallback') await this.deliverUndelivered();
        if (this.transport === 'sse') await this.stream();
        else if (await this.longPoll()) this.recovered();
      } catch (error) {
        if (this.stopped) return;
        this.options.onError?.(error);
        if (error instanceof UnauthorizedError) return this.stop();
        await this.failed();
      }
    }
  }

  /** One long-poll; true when it was answered (notifications or a timeout), false when told to wait. */
  private async longPoll(): Promise<boolean> {
    const timeout = this.options.timeout ?? DEFAULTS.timeout;
    const deadline = cutAfter(timeout * 1000 + LONG_POLL_GRACE_MS, this.stopping.signal);
    const answer = await this.api.notifications
      .longPoll({ query: { timeout }, fetchOptions: { signal: deadline.signal, cache: WAITING_REQUEST_CACHE } })
      .finally(deadline.clear);
    if (answer.status === 200) {
      await this.hand(answer.body.notifications);
      return true;
    }
    if (answer.status === 429 || answer.status === 503) {
      // The server is fine and says when to come back: not a failure of real-time delivery.
      await sleep(retryAfterMs(answer.headers.get('retry-after'), MAX_RETRY_AFTER_MS) ?? this.backoff.next(), this.stopping.signal);
      return false;
    }
    throw new UnexpectedAnswerError(answer.status, answer.body);
  }

  /**
   * One stream, read to its end: each event handed to the app as it comes. Connected counts as
   * recovered; a stream the server ends is resumed after its `retry:` hint, with Last-Event-ID.
   */
  private async stream(): Promise<void> {
    const response = await this.openStream(this.lastEventId, this.stopping.signal);
    if (response.status === 401) throw new UnauthorizedError(detailOf(await response.json().catch(() => undefined)));
    if (response.status === 429 || response.status === 503) {
      await response.body?.cancel();
      await sleep(retryAfterMs(response.headers.get('retry-after'), MAX_RETRY_AFTER_MS) ?? this.backoff.next(), this.stopping.signal);
      return;
    }
    // A 200 that is no event stream (a captive portal's page, a proxy's) is a failure, as for EventSource.
    if (response.status !== 200 || !response.body || !/^text\/event-stream\b/i.test(response.headers.get('content-type') ?? '')) {
      throw new UnexpectedAnswerError(response.status, await response.text().catch(() => undefined));
    }
    this.recovered();
    await readEvents(
      response.body,
      async (event) => {
        await this.hand([JSON.parse(event.data) as Notification]);
        if (event.id) this.lastEventId = event.id;
      },
      (ms) => (this.reconnectMs = ms),
      STREAM_SILENCE_MS,
    );
    await sleep(this.reconnectMs, this.stopping.signal);
  }

  /**
   * The fallback: the undelivered ones, oldest first, handed to the app and then acknowledged. The
   * list is newest first, so all its pages are read: the first alone would hand a backlog's newest
   * hundred before the older ones.
   */
  private async deliverUndelivered(): Promise<void> {
    const newestFirst: Notification[] = [];
    for (let cursor: string | undefined; ; ) {
      const answer = await this.api.notifications.list({ query: { delivered: 'false', limit: '100', cursor }, fetchOptions: { signal: this.stopping.signal } });
      if (answer.status !== 200) throw new UnexpectedAnswerError(answer.status, answer.body);
      newestFirst.push(...answer.body);
      cursor = nextCursorOf(answer.headers.get('link'));
      if (!cursor) break;
    }
    const oldestFirst = newestFirst.reverse();
    await this.hand(oldestFirst);
    // Only what the app has taken (now or before: an acknowledgement may have failed); a batch the
    // app failed on stays undelivered and comes again. A 400 means it was delivered meanwhile (to
    // another client of the user's): nothing left to confirm.
    for (const notification of oldestFirst.filter((candidate) => this.seen.has(candidate.id))) {
      await this.api.notifications.acknowledge({ params: { id: notification.id }, fetchOptions: { signal: this.stopping.signal } });
    }
  }

  /**
   * Gives the app what it has not taken yet and waits for it. An error of the app's is reported, not
   * counted against the connection; what it failed on is not remembered as taken, and is handed
   * again, first, with the next batch (an empty one too: a long-poll's timeout): the server marked
   * what came by long-poll or stream delivered, so nothing else would bring it back.
   */
  private async hand(notifications: Notification[]): Promise<void> {
    const fresh = this.seen.unseen(withoutRepeats([...this.failedOn, ...notifications]));
    if (fresh.length === 0) return;
    try {
      await this.options.onNotifications(fresh);
      this.seen.remember(fresh);
      this.failedOn = [];
    } catch (error) {
      this.failedOn = fresh;
      this.options.onError?.(error);
    }
  }

  private recovered(): void {
    this.failuresInARow = 0;
    this.backoff.reset();
    this.switchTo(this.transport);
  }

  /**
   * Whatever the failure: the server's own refusals of these requests are handled where they come
   * (401, 429, 503) or prevented (a timeout it refuses), so a 4xx here, or a 200 that is no stream, is
   * something in between (a proxy's 408 for a long request, a captive portal's page).
   */
  private async failed(): Promise<void> {
    this.failuresInARow++;
    if (this.failuresInARow >= (this.options.failuresBeforeFallback ?? DEFAULTS.failuresBeforeFallback)) this.switchTo('fallback');
    const wait = this.mode === 'fallback' ? (this.options.fallbackIntervalMs ?? DEFAULTS.fallbackIntervalMs) : this.backoff.next();
    await sleep(wait, this.stopping.signal);
  }

  private switchTo(mode: DeliveryMode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    this.options.onModeChange?.(mode);
  }
}

/** A signal that aborts after `ms`, or with `outer`; `clear` drops the timer once the request has its answer. */
function cutAfter(ms: number, outer: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort(outer.aborted ? outer.reason : new DOMException('No answer in time', 'TimeoutError'));
  const timer = setTimeout(abort, ms);
  outer.addEventListener('abort', abort, { once: true, signal: controller.signal });
  if (outer.aborted) abort();
  return { signal: controller.signal, clear: () => (clearTimeout(timer), controller.abort()) };
}

/** The notifications in their order, each once (a retried batch and a listing may both hold one). */
function withoutRepeats(notifications: Notification[]): Notification[] {
  const ids = new Set<string>();
  return notifications.filter(({ id }) => !ids.has(id) && ids.add(id));
}

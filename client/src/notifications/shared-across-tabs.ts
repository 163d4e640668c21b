import type { ApiClient } from '../api-client';
import { sleep } from './backoff';
import { byHeartbeat, byWebLock } from './leadership';
import { RecentIds } from './recent-ids';
import { checkSubscribeOptions, type DeliveryMode, type Notification, type SubscribeOptions, type Subscription } from './subscribe';

/** What the tabs of one user tell each other over their BroadcastChannel. */
type TabMessage =
  | { kind: 'batch'; notifications: Notification[] }
  | { kind: 'mode'; mode: DeliveryMode }
  /** A tab that has just opened asks the leader for its mode. */
  | { kind: 'hello' }
  /**
   * A tab stopped leading while still open (two tabs led at once for a moment): a request it cut
   * may have been answered, so the leader looks for what came meanwhile.
   */
  | { kind: 'handed-over' };

/**
 * How long a new leader keeps looking for what the old leader's connection took. That tab has
 * closed, but the server learns of it only when the connection's end reaches it — a moment later,
 * later still through a proxy — and until then it answers that connection, marks the answer
 * delivered, and no tab ever reads it.
 */
export const HANDOVER_SETTLE_MS = 5000;

/** Whether this environment has tabs that can share one connection (a browser with BroadcastChannel). */
export const canShareAcrossTabs = (): boolean => typeof window !== 'undefined' && typeof BroadcastChannel !== 'undefined';

/** Web Locks where the browser has them, else an election by heartbeats over a BroadcastChannel. */
const leadership = () => (typeof navigator !== 'undefined' && navigator.locks ? byWebLock : byHeartbeat);

/**
 * One connection per browser, not per tab: the tabs of one origin and user elect a leader with the
 * Web Locks API — the tab holding the lock — or, without it, by heartbeats (leadership.ts); the
 * leader alone runs the subscription (`start`) and relays each batch to the other tabs over a
 * BroadcastChannel. When the leader's tab closes, the next tab takes over: at once with Web Locks
 * (the browser releases the lock), within a second by heartbeats. A new leader hands over what
 * the old one may have taken and not relayed (it lists what is newer than the newest it had seen,
 * and was not delivered before this tab opened, at once and through the first seconds: see
 * handOver), so nothing is lost in the handover.
 */
export function shareAcrossTabs(
  api: ApiClient,
  userKey: string,
  options: SubscribeOptions,
  start: (options: SubscribeOptions) => Subscription,
): Subscription & { readonly isLeader: boolean } {
  checkSubscribeOptions(options);
  const name = `punchclock:notifications:${userKey}`;
  const channel = new BroadcastChannel(name);
  const closing = new AbortController();
  const seen = new RecentIds();
  /** The newest creation time this tab has seen, by the server's clock ('' until it has seen one). */
  let newestSeen = '';
  // What was delivered before this tab opened is not for its app: a catch-up leaves it out. (Not the
  // tab's clock: one ahead of the server's hid whatever came in the first minutes from every catch-up.)
  const deliveredBefore = rememberDelivered(api, seen, closing.signal).then((known) => {
    // Not known (the list failed): the tab's clock is all there is.
    if (!known && newestSeen === '') newestSeen = new Date().toISOString();
  });
  /** A catch-up that hands on what is newer than the newest this tab has seen, and new to it. */
  const catchUpFor = (hand: (batch: Notification[]) => Promise<void>, signal: AbortSignal) => async () => {
    await deliveredBefore;
    await catchUp(api, (notification) => notification.created_at > newestSeen && !seen.has(notification.id), hand, signal);
  };
  let mode: DeliveryMode = options.transport ?? 'long-poll';
  let isLeader = false;

  /** Hands the app what this tab has not taken yet; remembers the newest it has seen. */
  const hand = async (notifications: Notification[]) => {
    for (const notification of notifications) if (notification.created_at > newestSeen) newestSeen = notification.created_at;
    const fresh = seen.unseen(notifications);
    if (fresh.length === 0) return;
    seen.remember(fresh);
    await options.onNotifications(fresh);
  };
  const setMode = (next: DeliveryMode) => {
    if (next === mode) return;
    mode = next;
    options.onModeChange?.(next);
  };
  const post = (message: TabMessage) => channel.postMessage(message);
  /** The leader's share: to the other tabs, and to its own app. */
  const relay = async (batch: Notification[]) => {
    post({ kind: 'batch', notifications: batch });
    await hand(batch);
  };

  channel.onmessage = (event: MessageEvent<TabMessage>) => {
    const message = event.data;
    // Also while leading: two tabs that led together for a moment each relay what they took.
    if (message.kind === 'batch') void hand(message.notifications).catch((error) => options.onError?.(error));
    else if (message.kind === 'mode' && !isLeader) setMode(message.mode);
    else if (message.kind === 'hello' && isLeader) post({ kind: 'mode', mode });
    else if (message.kind === 'handed-over' && isLeader) void catchUpFor(relay, closing.signal)().catch((error) => options.onError?.(error));
  };
  post({ kind: 'hello' });

  const led = leadership()(name, closing.signal, async (leading) => {
    isLeader = true;
    try {
      const settling = handOver(catchUpFor(relay, leading), relay, leading, (error) => leading.aborted || options.onError?.(error));
      await settling.catchUp();
      const subscription = start({
        ...options,
        signal: leading,
        onNotifications: settling.relay,
        onModeChange: (next) => {
          post({ kind: 'mode', mode: next });
          setMode(next);
        },
      });
      // Held until this tab closes the subscription or hands over (or the tab itself goes).
      await subscription.done;
    } finally {
      isLeader = false;
      if (!closing.signal.aborted) post({ kind: 'handed-over' });
    }
  });

  const close = () => {
    closing.abort();
    channel.close();
  };
  // Both removed once this tab's subscription is closed: a long-lived signal or page does not hold it.
  options.signal?.addEventListener('abort', close, { once: true, signal: closing.signal });
  // A closing tab lets go at once (without Web Locks, the others would wait for its silence).
  globalThis.addEventListener?.('pagehide', close, { once: true, signal: closing.signal });
  return {
    close,
    get mode() {
      return mode;
    },
    get isLeader() {
      return isLeader;
    },
    done: led.then(() => undefined),
  };
}

/**
 * A new leader's catching up on what the old leader may have taken and not relayed (the server
 * marked it delivered): what came after the newest this tab had seen, at once, again before each
 * batch of the first HANDOVER_SETTLE_MS (so that the batches stay in order), and once more when
 * that time is up. `relay` hands each tab what it has not seen, so what comes twice shows once.
 */
function handOver(
  catchUpOnce: () => Promise<void>,
  relay: (batch: Notification[]) => Promise<void>,
  leading: AbortSignal,
  report: (error: unknown) => void,
) {
  const settledAt = Date.now() + HANDOVER_SETTLE_MS;
  const settling = () => Date.now() < settledAt;
  const catchUpNow = () => catchUpOnce().catch(report);
  void sleep(HANDOVER_SETTLE_MS, leading).then(() => {
    if (!leading.aborted) return catchUpNow();
  });
  return {
    catchUp: catchUpNow,
    relay: async (batch: Notification[]) => {
      if (settling()) await catchUpNow();
      await relay(batch);
    },
  };
}

/** The newest notifications, as many as a catch-up looks at; undefined when the list failed. */
async function newestNotifications(api: ApiClient, signal: AbortSignal): Promise<Notification[] | undefined> {
  const answer = await api.notifications.list({ query: { limit: '100' }, fetchOptions: { signal } });
  return answer.status === 200 ? answer.body : undefined;
}

/**
 * Remembers as seen the newest notifications already delivered (to this browser's tabs, or
 * elsewhere, before this tab opened); whether it could list them.
 */
async function rememberDelivered(api: ApiClient, seen: RecentIds, signal: AbortSignal): Promise<boolean> {
  const newest = await newestNotifications(api, signal).catch(() => undefined);
  if (newest) seen.remember(newest.filter((notification) => notification.delivered));
  return newest !== undefined;
}

/**
 * What this tab `isMissed`, for all tabs: a leader that closed, or stepped down, may have taken it
 * (the server marked it delivered) and not relayed it. Undelivered ones too: the mark of what the
 * old leader's connection took may not be written yet when this looks, and a step-down is looked at
 * once (what comes again by the subscription shows once).
 */
async function catchUp(
  api: ApiClient,
  isMissed: (notification: Notification) => boolean,
  hand: (batch: Notification[]) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const newest = await newestNotifications(api, signal);
  const missed = (newest ?? []).filter(isMissed).reverse();
  if (missed.length > 0) await hand(missed);
}

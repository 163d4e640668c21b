import type { ApiClient } from '../api-client';
import { RecentIds } from './recent-ids';
import type { DeliveryMode, Notification, SubscribeOptions, Subscription } from './subscribe';

/** What the tabs of one user tell each other over their BroadcastChannel. */
type TabMessage =
  | { kind: 'batch'; notifications: Notification[] }
  | { kind: 'mode'; mode: DeliveryMode }
  /** A tab that has just opened asks the leader for its mode. */
  | { kind: 'hello' };

/** Whether this environment can share one connection between tabs (Web Locks and BroadcastChannel). */
export const canShareAcrossTabs = (): boolean =>
  typeof navigator !== 'undefined' && navigator.locks !== undefined && typeof BroadcastChannel !== 'undefined';

/**
 * One connection per browser, not per tab: the tabs of one origin and user elect a leader with the
 * Web Locks API — the tab holding the lock — which alone runs the subscription (`start`) and relays
 * each batch to the other tabs over a BroadcastChannel. When the leader's tab closes, the browser
 * releases its lock and the next tab waiting for it takes over at once. A new leader first hands
 * over what the old one may have taken and not relayed (it lists the notifications newer than the
 * newest it has seen), so nothing is lost in the handover.
 */
export function shareAcrossTabs(
  api: ApiClient,
  userKey: string,
  options: SubscribeOptions,
  start: (options: SubscribeOptions) => Subscription,
): Subscription & { readonly isLeader: boolean } {
  const name = `punchclock:notifications:${userKey}`;
  const channel = new BroadcastChannel(name);
  const closing = new AbortController();
  const seen = new RecentIds();
  let newestSeen = new Date().toISOString();
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

  channel.onmessage = (event: MessageEvent<TabMessage>) => {
    const message = event.data;
    if (message.kind === 'batch' && !isLeader) void hand(message.notifications).catch((error) => options.onError?.(error));
    else if (message.kind === 'mode' && !isLeader) setMode(message.mode);
    else if (message.kind === 'hello' && isLeader) post({ kind: 'mode', mode });
  };
  post({ kind: 'hello' });

  const led = navigator.locks
    .request(name, { signal: closing.signal }, async () => {
      isLeader = true;
      await catchUp(api, () => newestSeen, hand, closing.signal).catch((error) => options.onError?.(error));
      const subscription = start({
        ...options,
        signal: closing.signal,
        onNotifications: async (batch) => {
          post({ kind: 'batch', notifications: batch });
          await hand(batch);
        },
        onModeChange: (next) => {
          post({ kind: 'mode', mode: next });
          setMode(next);
        },
      });
      // Held until this tab closes the subscription (or the tab itself goes).
      await subscription.done;
    })
    // Aborted while waiting for the lock: this tab closed as a follower.
    .catch((error: unknown) => (closing.signal.aborted ? undefined : options.onError?.(error)));

  const close = () => {
    closing.abort();
    channel.close();
  };
  options.signal?.addEventListener('abort', close, { once: true });
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

/** What arrived after the newest this tab has seen: taken by a leader that closed before relaying it. */
async function catchUp(api: ApiClient, newestSeen: () => string, hand: (batch: Notification[]) => Promise<void>, signal: AbortSignal): Promise<void> {
  const answer = await api.notifications.list({ query: { limit: '100' }, fetchOptions: { signal } });
  if (answer.status !== 200) return;
  const missed = answer.body.filter((notification) => notification.created_at > newestSeen()).reverse();
  if (missed.length > 0) await hand(missed);
}

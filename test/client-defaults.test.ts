// The SDK's subscribe with no options does what client/README.md says (long-polls of 30 s, a backoff
// of 1 s doubling to 30 s, the fallback after 3 failures in a row listing every 5 s, Retry-After
// honoured on 503). The other suites pass their own, faster values; here the timers are faked and a
// scripted fetch stands in for the server, so that minutes pass in a moment.
import { getEventListeners } from 'node:events';
import { afterEach, expect, it, vi } from 'vitest';
import { createClient, type DeliveryMode, type SubscribeOptions, type Subscription } from '../client/src';

const LONG_POLL = 'GET /api/notifications/long-poll/';
const LIST = 'GET /api/notifications/';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });

/** A fetch that answers each request with `answer(request)`, noting what was sent and when (fake ms). */
function scriptedFetch(answer: (request: string, signal: AbortSignal | undefined) => Response | Promise<Response>) {
  const sent: Array<{ request: string; query: string; at: number; cache?: RequestCache }> = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const request = `${init?.method ?? 'GET'} ${url.pathname}`;
    sent.push({ request, query: url.search, at: Date.now(), cache: init?.cache });
    return answer(request, init?.signal ?? undefined);
  };
  return { fetch: fetchImpl, sent };
}

/** A request no answer comes to (a connection dead without a word), until its signal aborts it. */
const neverAnswered = (signal: AbortSignal | undefined) =>
  new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));

let subscription: Subscription | undefined;

/** Subscribes with no options but the listeners, on faked timers starting at 0, with the jitter at its ceiling. */
function subscribeWithDefaults(fetchImpl: typeof fetch, options: Partial<SubscribeOptions> = {}) {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 });
  vi.spyOn(Math, 'random').mockReturnValue(1);
  const modes: DeliveryMode[] = [];
  const errors: unknown[] = [];
  const client = createClient({ baseUrl: 'http://punchclock.test', token: 'token', fetch: fetchImpl });
  subscription = client.notifications.subscribe({
    onNotifications: () => {},
    onModeChange: (mode) => void modes.push(mode),
    onError: (error) => void errors.push(error),
    ...options,
  });
  return { modes, errors };
}

afterEach(async () => {
  subscription?.close();
  await subscription?.done;
  subscription = undefined;
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const proxyCutsLongPolls = (request: string) => {
  if (request === LONG_POLL) throw new TypeError('fetch failed: cut by a proxy');
  return json(200, []);
};

it('long-polls for 30 s, backs off 1 s then 2 s, and after the third failure in a row lists every 5 s', async () => {
  const { fetch, sent } = scriptedFetch(proxyCutsLongPolls);
  const { modes, errors } = subscribeWithDefaults(fetch);
  await vi.advanceTimersByTimeAsync(13_000);
  expect(sent.map(({ request, at }) => `${at} ${request}`)).toEqual([
    `0 ${LONG_POLL}`,
    `1000 ${LONG_POLL}`,
    `3000 ${LONG_POLL}`,
    // Fallback: the undelivered listed, then another try at long-polling, every 5 s.
    `8000 ${LIST}`,
    `8000 ${LONG_POLL}`,
    `13000 ${LIST}`,
    `13000 ${LONG_POLL}`,
  ]);
  expect(sent.filter(({ request }) => request === LONG_POLL).every(({ query }) => query === '?timeout=30')).toBe(true);
  expect(modes).toEqual(['fallback']);
  expect(errors).toHaveLength(5);
});

it('backs off from 1 s doubling up to 30 s', async () => {
  const { fetch, sent } = scriptedFetch(proxyCutsLongPolls);
  subscribeWithDefaults(fetch, { failuresBeforeFallback: 100 });
  await vi.advanceTimersByTimeAsync(200_000);
  const waits = sent.slice(1).map(({ at }, i) => at - sent[i].at);
  expect(waits.slice(0, 8)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
});

it('waits as Retry-After says on 503, which is not a failure: no backoff, no fallback', async () => {
  const { fetch, sent } = scriptedFetch(() => json(503, { detail: 'Service temporarily unavailable, try again shortly.' }, { 'Retry-After': '7' }));
  const { modes, errors } = subscribeWithDefaults(fetch);
  await vi.advanceTimersByTimeAsync(28_000);
  expect(sent.map(({ request, at }) => `${at} ${request}`)).toEqual([0, 7000, 14_000, 21_000, 28_000].map((at) => `${at} ${LONG_POLL}`));
  expect(modes).toEqual([]);
  expect(errors).toEqual([]);
});

it.each([0, 61, 2.5])('refuses a timeout of %s at once, before any request: the server would refuse every long-poll, and nothing would come', (timeout) => {
  const { fetch, sent } = scriptedFetch(() => json(400, { timeout: ['Number must be between 1 and 60.'] }));
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 });
  const client = createClient({ baseUrl: 'http://punchclock.test', token: 'token', fetch });
  expect(() => (subscription = client.notifications.subscribe({ timeout, onNotifications: () => {} }))).toThrow(RangeError);
  expect(sent).toEqual([]);
});

it('leaves no timer, and no listener on the app\'s signal, once closed', async () => {
  const { fetch } = scriptedFetch(proxyCutsLongPolls);
  const aborter = new AbortController();
  subscribeWithDefaults(fetch, { signal: aborter.signal });
  await vi.advanceTimersByTimeAsync(500); // waiting out the first backoff
  expect(vi.getTimerCount()).toBe(1);
  subscription!.close();
  await subscription!.done;
  expect(vi.getTimerCount()).toBe(0);
  expect(getEventListeners(aborter.signal, 'abort')).toEqual([]);
});

it('cuts a long-poll still unanswered 15 s past its timeout, as a failure, and polls again', async () => {
  const { fetch, sent } = scriptedFetch((request, signal) => (request === LONG_POLL ? neverAnswered(signal) : json(200, [])));
  const { errors } = subscribeWithDefaults(fetch);
  await vi.advanceTimersByTimeAsync(46_000);
  expect(sent.map(({ request, at }) => `${at} ${request}`)).toEqual([`0 ${LONG_POLL}`, `46000 ${LONG_POLL}`]);
  expect(errors).toEqual([expect.objectContaining({ name: 'TimeoutError' })]);
});

it('cuts a stream that sends nothing, not even a heartbeat, for 45 s, and connects again', async () => {
  const STREAM = 'GET /api/notifications/sse/';
  const { fetch, sent } = scriptedFetch((request, signal) => {
    if (request !== STREAM) return json(200, []);
    // The head and the retry hint, then silence (until the request is aborted, as fetch's body would be).
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        controller.enqueue(new TextEncoder().encode('retry: 3000\n\n'));
        signal?.addEventListener('abort', () => controller.error(signal.reason), { once: true });
      },
    });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  });
  const { errors } = subscribeWithDefaults(fetch, { transport: 'sse' });
  await vi.advanceTimersByTimeAsync(46_000);
  expect(sent.map(({ request, at }) => `${at} ${request}`)).toEqual([`0 ${STREAM}`, `46000 ${STREAM}`]);
  expect(errors).toEqual([expect.objectContaining({ name: 'TimeoutError' })]);
});

it('counts a stream answered 200 with something else than an event stream as a failure, and falls back after three', async () => {
  const STREAM = 'GET /api/notifications/sse/';
  const portal = () => new Response('<html>Sign in to the Wi-Fi</html>', { status: 200, headers: { 'Content-Type': 'text/html' } });
  const { fetch, sent } = scriptedFetch((request) => (request === STREAM ? portal() : json(200, [])));
  const { modes } = subscribeWithDefaults(fetch, { transport: 'sse' });
  await vi.advanceTimersByTimeAsync(8000);
  expect(sent.map(({ request, at }) => `${at} ${request}`).slice(0, 4)).toEqual([`0 ${STREAM}`, `1000 ${STREAM}`, `3000 ${STREAM}`, `8000 ${LIST}`]);
  expect(modes).toEqual(['fallback']);
});

it.each(['long-poll', 'sse'] as const)('sends each %s past the browser’s HTTP cache (no-store), so tabs’ waiting requests do not take turns', async (transport) => {
  const { fetch, sent } = scriptedFetch((request, signal) => (request === LIST ? json(200, []) : neverAnswered(signal)));
  subscribeWithDefaults(fetch, { transport });
  await vi.advanceTimersByTimeAsync(10);
  const waiting = sent.filter(({ request }) => request !== LIST);
  expect(waiting.map(({ request }) => request)).toEqual([transport === 'sse' ? 'GET /api/notifications/sse/' : LONG_POLL]);
  expect(waiting[0].cache).toBe('no-store');
});

// The SDK's notification subscription (issue 16) against a real server on SQLite: the long-poll loop
// in each of its modes, the acknowledgement fallback, and a server that goes away and comes back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createClient, UnauthorizedError, type DeliveryMode, type Notification, type Subscription } from '../client/src';
import { Backoff, retryAfterMs } from '../client/src/notifications/backoff';
import { RecentIds } from '../client/src/notifications/recent-ids';
import { describeApi, type TestUser } from './support/api';
import { call, startServer, type ChildServer } from './support/child-server';
import { freePort } from './support/redis-server';
import { until } from './support/waiting';

/** Waits for `check` (sync or not) to hold. */
const waitFor = (check: () => boolean | Promise<boolean>, timeoutMs?: number) => until(check, String(check), timeoutMs);

/** What a subscription has handed to the app, batch by batch, and what else it said. */
function recorder() {
  const batches: Notification[][] = [];
  const errors: unknown[] = [];
  const modes: DeliveryMode[] = [];
  return {
    batches,
    errors,
    modes,
    messages: () => batches.flat().map((notification) => notification.message),
    options: {
      onNotifications: (batch: Notification[]) => void batches.push(batch),
      onError: (error: unknown) => void errors.push(error),
      onModeChange: (mode: DeliveryMode) => void modes.push(mode),
    },
  };
}

/**
 * fetch, with the requests it sent counted by method and path, a switch that breaks long-polls and
 * streams as a proxy in the way would (the request fails, the server never sees it), and a cut of
 * the streams open.
 */
function observedFetch() {
  const sent: string[] = [];
  const answered: Array<{ request: string; status: number; at: number }> = [];
  const lastEventIds: Array<string | undefined> = [];
  const streams = new Set<AbortController>();
  const state = { breakRealTime: false };
  const observed: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const request = `${init?.method ?? 'GET'} ${url.pathname}`;
    sent.push(request);
    if (state.breakRealTime && /\/(long-poll|sse)\/$/.test(url.pathname)) throw new TypeError('fetch failed: cut by the proxy');
    let signal = init?.signal ?? undefined;
    if (url.pathname.endsWith('/sse/')) {
      lastEventIds.push(new Headers(init?.headers).get('last-event-id') ?? undefined);
      const cut = new AbortController();
      streams.add(cut);
      signal = signal ? AbortSignal.any([signal, cut.signal]) : cut.signal;
    }
    const response = await fetch(input, { ...init, signal });
    answered.push({ request, status: response.status, at: Date.now() });
    return response;
  };
  /** Cuts the open streams, as a proxy or a network change would. */
  const cutStreams = () => {
    streams.forEach((stream) => stream.abort(new TypeError('network changed')));
    streams.clear();
  };
  return { fetch: observed, sent, answered, lastEventIds, cutStreams, state, count: (request: string) => sent.filter((line) => line === request).length };
}

const FAST = { backoff: { initialMs: 20, maxMs: 100 }, fallbackIntervalMs: 100 };

describe('backoff and the ids already taken', () => {
  it('waits a random time below a ceiling that doubles up to the maximum, and starts over after a reset', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 }, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => backoff.next())).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    backoff.reset();
    expect(backoff.next()).toBe(1000);
    const jittered = new Backoff({ initialMs: 1000, maxMs: 30_000 }, () => 0.25);
    expect(jittered.next()).toBe(250);
  });

  it('reads Retry-After as seconds or a date, within a bound', () => {
    expect(retryAfterMs('3', 60_000)).toBe(3000);
    expect(retryAfterMs('600', 60_000)).toBe(60_000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 60_000, 4000)).toBe(6000);
    for (const nonsense of [null, '', 'soon', '-1']) expect(retryAfterMs(nonsense, 60_000)).toBeUndefined();
  });

  it('drops what was taken before and forgets the oldest beyond its capacity', () => {
    const ids = new RecentIds(2);
    ids.remember([{ id: 'a' }, { id: 'b' }]);
    expect(ids.unseen([{ id: 'a' }, { id: 'c' }])).toEqual([{ id: 'c' }]);
    ids.remember([{ id: 'c' }]);
    expect([ids.has('a'), ids.has('b'), ids.has('c')]).toEqual([false, true, true]);
  });
});

describeApi(
  'SDK subscribe',
  (ctx) => {
    let open: Subscription[] = [];
    afterEach(async () => {
      open.forEach((subscription) => subscription.close());
      await Promise.all(open.map((subscription) => subscription.done));
      open = [];
    });
    const waitingConnections = () => ctx.services.hub.stats().connections;

    const send = (user: TestUser, message: string) =>
      ctx.http.post('/api/notifications/test/').set(user.auth).send({ type: 'INFO', message }).expect(201);
    const undelivered = async (user: TestUser): Promise<string[]> =>
      (await ctx.http.get('/api/notifications/?delivered=false').set(user.auth).expect(200)).body.map((n: Notification) => n.message);

    async function subscribed(user: TestUser, options: Partial<Parameters<ReturnType<typeof createClient>['notifications']['subscribe']>[0]> = {}, fetchImpl?: typeof fetch) {
      const client = createClient({ baseUrl: await ctx.listen(), token: user.token, fetch: fetchImpl });
      const record = recorder();
      const subscription = client.notifications.subscribe({ ...record.options, timeout: 1, ...FAST, ...options });
      open.push(subscription);
      return { record, subscription, client };
    }

    it('hands what was waiting at once, then each new one, oldest first, never twice; the server marks them delivered', async () => {
      const user = await ctx.createUser();
      await send(user, 'waiting 1');
      await send(user, 'waiting 2');
      const { record, subscription } = await subscribed(user, { timeout: 30 });
      await waitFor(() => record.messages().length === 2);
      expect(record.batches[0].map((n) => n.message)).toEqual(['waiting 1', 'waiting 2']);
      await send(user, 'new 1');
      await waitFor(() => record.messages().includes('new 1'));
      expect(record.messages()).toEqual(['waiting 1', 'waiting 2', 'new 1']);
      expect(await undelivered(user)).toEqual([]);
      expect(subscription.mode).toBe('long-poll');
      expect(record.errors).toEqual([]);
    });

    it('polls again after each timeout answer, and still hands what comes after', async () => {
      const user = await ctx.createUser();
      const observed = observedFetch();
      const { record } = await subscribed(user, { timeout: 1 }, observed.fetch);
      await waitFor(() => observed.count('GET /api/notifications/long-poll/') >= 3, 5000);
      await send(user, 'after timeouts');
      await waitFor(() => record.messages().includes('after timeouts'));
      expect(record.errors).toEqual([]);
    });

    it('stops on abort and on close: the request is cut and nothing more is taken', async () => {
      const user = await ctx.createUser();
      const aborter = new AbortController();
      const { subscription } = await subscribed(user, { signal: aborter.signal, timeout: 30 });
      await waitFor(() => waitingConnections() === 1);
      aborter.abort();
      await subscription.done;
      await waitFor(() => waitingConnections() === 0);
      await send(user, 'after abort');
      const other = await subscribed(user, { timeout: 30 });
      other.subscription.close();
      await other.subscription.done;
      await waitFor(() => waitingConnections() === 0);
      expect(await undelivered(user)).toEqual(['after abort']);
    });

    it('ends with an UnauthorizedError once the token is revoked', async () => {
      const user = await ctx.createUser();
      const { record, subscription } = await subscribed(user, { timeout: 1 });
      await ctx.http.post('/auth/token/logout/').set(user.auth).expect(204);
      await subscription.done;
      expect(record.errors.at(-1)).toBeInstanceOf(UnauthorizedError);
      expect(subscription.mode).toBe('long-poll');
    });

    it('waits as Retry-After says when the user has all the connections the server allows, then gets in', async () => {
      const user = await ctx.createUser();
      const base = await ctx.listen();
      const holders = Array.from({ length: 6 }, () => new AbortController());
      const held = holders.map((holder) =>
        fetch(`${base}/api/notifications/long-poll/?timeout=30`, { headers: { Authorization: `Token ${user.token}` }, signal: holder.signal }).catch(() => undefined),
      );
      await waitFor(() => waitingConnections() >= 6);
      const observed = observedFetch();
      const { record, subscription } = await subscribed(user, { timeout: 30 }, observed.fetch);
      await waitFor(() => observed.answered.length === 1);
      holders.forEach((holder) => holder.abort());
      await Promise.all(held);
      await send(user, 'after the crowd');
      await waitFor(() => record.messages().includes('after the crowd'), 5000);
      // Refused (429, Retry-After: 1), it waited the second, not the backoff's 20 ms.
      const [refused, admitted] = observed.answered;
      expect([refused.status, admitted.status]).toEqual([429, 200]);
      expect(admitted.at - refused.at).toBeGreaterThanOrEqual(1000);
      expect(subscription.mode).toBe('long-poll');
      expect(record.errors).toEqual([]);
    });

    it('lists and acknowledges when long-polls keep failing, and returns to long-poll once they work', async () => {
      const user = await ctx.createUser();
      const observed = observedFetch();
      observed.state.breakRealTime = true;
      const { record, subscription } = await subscribed(user, { timeout: 2, failuresBeforeFallback: 2 }, observed.fetch);
      await waitFor(() => subscription.mode === 'fallback');
      await send(user, 'by fallback');
      await waitFor(() => record.messages().includes('by fallback'));
      await waitFor(async () => (await undelivered(user)).length === 0);
      expect(observed.count('POST /api/notifications/' + record.batches.flat()[0].id + '/acknowledge/')).toBe(1);

      // Back as soon as a long-poll is answered again (a timeout answer, at the latest).
      observed.state.breakRealTime = false;
      await waitFor(() => subscription.mode === 'long-poll');
      await send(user, 'by long-poll');
      await waitFor(() => record.messages().includes('by long-poll'));
      expect(record.modes).toEqual(['fallback', 'long-poll']);
      expect(record.messages()).toEqual(['by fallback', 'by long-poll']);
      // What came by long-poll was marked delivered by the server: never acknowledged.
      expect(observed.sent.filter((line) => line.endsWith('/acknowledge/'))).toHaveLength(1);
    });

    it('over SSE: hands what was waiting and each new one on one stream, marked delivered by the server', async () => {
      const user = await ctx.createUser();
      await send(user, 'waiting');
      const observed = observedFetch();
      const { record, subscription } = await subscribed(user, { transport: 'sse' }, observed.fetch);
      await waitFor(() => record.messages().includes('waiting'));
      await send(user, 'streamed');
      await waitFor(() => record.messages().includes('streamed'));
      expect(record.messages()).toEqual(['waiting', 'streamed']);
      expect(subscription.mode).toBe('sse');
      expect(observed.count('GET /api/notifications/sse/')).toBe(1);
      expect(await undelivered(user)).toEqual([]);
    });

    it('over SSE: resumes a cut stream with Last-Event-ID, nothing lost, nothing twice', async () => {
      const user = await ctx.createUser();
      const observed = observedFetch();
      const { record } = await subscribed(user, { transport: 'sse' }, observed.fetch);
      await send(user, 'before the cut');
      await waitFor(() => record.messages().includes('before the cut'));
      const [first] = record.batches.flat();
      observed.cutStreams();
      await waitFor(() => observed.lastEventIds.length === 2);
      expect(observed.lastEventIds).toEqual([undefined, first.id]);
      await send(user, 'after the cut');
      await waitFor(() => record.messages().includes('after the cut'));
      expect(record.messages()).toEqual(['before the cut', 'after the cut']);
      expect(await undelivered(user)).toEqual([]);
    });

    it('over SSE: lists and acknowledges when streams keep failing, and returns to the stream', async () => {
      const user = await ctx.createUser();
      const observed = observedFetch();
      const { record, subscription } = await subscribed(user, { transport: 'sse', failuresBeforeFallback: 2 }, observed.fetch);
      await waitFor(() => observed.count('GET /api/notifications/sse/') === 1);
      observed.state.breakRealTime = true;
      observed.cutStreams();
      await waitFor(() => subscription.mode === 'fallback');
      observed.state.breakRealTime = false;
      await waitFor(() => subscription.mode === 'sse');
      await send(user, 'back on the stream');
      await waitFor(() => record.messages().includes('back on the stream'));
      expect(record.modes).toEqual(['fallback', 'sse']);
    });

    it('in fallback mode hands a backlog longer than a page of the list oldest first, all of it', async () => {
      const user = await ctx.createUser();
      for (let i = 1; i <= 105; i++) await send(user, `backlog ${i}`);
      const observed = observedFetch();
      observed.state.breakRealTime = true;
      const { record } = await subscribed(user, { failuresBeforeFallback: 1 }, observed.fetch);
      await waitFor(() => record.messages().length === 105, 10_000);
      // The list's order (newest first by creation, then id), read backwards.
      const handed = record.batches.flat();
      const oldestFirst = [...handed].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
      expect(handed.map((n) => n.id)).toEqual(oldestFirst.map((n) => n.id));
      expect(new Set(record.messages()).size).toBe(105);
      await waitFor(async () => (await undelivered(user)).length === 0);
    });

    it('hands a long-poll’s batch the app threw on again, first, with the next answer (the server marked it delivered)', async () => {
      const user = await ctx.createUser();
      let failures = 1;
      const taken: string[] = [];
      await subscribed(user, {
        timeout: 1,
        onNotifications: (batch) => {
          if (failures-- > 0) throw new Error('the app was busy');
          taken.push(...batch.map((n) => n.message));
        },
      });
      await send(user, 'thrown on once');
      // Handed again with the next answer: a timeout after a second, empty.
      await waitFor(() => taken.includes('thrown on once'), 5000);
      await send(user, 'next');
      await waitFor(() => taken.includes('next'), 5000);
      expect(taken).toEqual(['thrown on once', 'next']);
    });

    it('over SSE: hands an event the app threw on again, first, with the next one (the server marked it delivered)', async () => {
      const user = await ctx.createUser();
      let failures = 1;
      const taken: string[][] = [];
      await subscribed(user, {
        transport: 'sse',
        onNotifications: (batch) => {
          if (failures-- > 0) throw new Error('the app was busy');
          taken.push(batch.map((n) => n.message));
        },
      });
      await send(user, 'thrown on once');
      await waitFor(() => failures === 0, 5000);
      await send(user, 'next');
      await waitFor(() => taken.flat().includes('next'), 5000);
      expect(taken).toEqual([['thrown on once', 'next']]);
      expect(await undelivered(user)).toEqual([]);
    });

    it('keeps what the app failed on undelivered in fallback mode, and hands it again', async () => {
      const user = await ctx.createUser();
      const observed = observedFetch();
      observed.state.breakRealTime = true;
      let failures = 1;
      const taken: string[] = [];
      await subscribed(
        user,
        {
          timeout: 30,
          failuresBeforeFallback: 1,
          onNotifications: (batch) => {
            if (failures-- > 0) throw new Error('the app was busy');
            taken.push(...batch.map((n) => n.message));
          },
        },
        observed.fetch,
      );
      await send(user, 'retried');
      await waitFor(() => taken.includes('retried'), 5000);
      await waitFor(async () => (await undelivered(user)).length === 0);
      expect(taken).toEqual(['retried']);
    });
  },
  { dialects: ['sqlite'], realtime: { fallbackPollMs: 200 } },
);

describe('SDK subscribe across a server restart', () => {
  let dir: string;
  let server: ChildServer | undefined;
  afterAll(async () => {
    await server?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('backs off while the server is gone and carries on when it is back: nothing lost, nothing twice', async () => {
    dir = mkdtempSync(join(tmpdir(), 'punchclock-sdk-'));
    const port = await freePort();
    const env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, PORT: String(port), ADMIN_USERNAME: 'sdk_admin', ADMIN_PASSWORD: 'a long admin password' };
    server = await startServer(env);
    const login = await call(server.base, 'POST', '/auth/token/login/', { body: { username: 'sdk_admin', password: 'a long admin password' } });
    const token = login.body.auth_token as string;
    const record = recorder();
    const client = createClient({ baseUrl: server.base, token });
    const subscription = client.notifications.subscribe({ ...record.options, timeout: 30, backoff: { initialMs: 50, maxMs: 200 }, failuresBeforeFallback: 1000 });
    try {
      await call(server.base, 'POST', '/api/notifications/test/', { token, body: { type: 'INFO', message: 'before' } });
      await waitFor(() => record.messages().includes('before'));

      await server.kill();
      await waitFor(() => record.errors.length >= 2, 5000);
      server = await startServer(env);
      await call(server.base, 'POST', '/api/notifications/test/', { token, body: { type: 'INFO', message: 'after' } });
      await waitFor(() => record.messages().includes('after'), 10_000);
      expect(record.messages()).toEqual(['before', 'after']);
      expect(subscription.mode).toBe('long-poll');
    } finally {
      subscription.close();
      await subscription.done;
    }
  });
});

import net from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import type { NotificationRow } from '../server/notifications/notifications.service';
import { pastCreation, sleep, until, wire } from './support/waiting';
import { notificationFixtures, stillThere } from './support/notification-fixtures';
import { describeApi, type ApiContext, type TestUser } from './support/api';

const SSE = '/api/notifications/sse/';
const HEARTBEAT_MS = 100;


interface SseEvent {
  id: string;
  data: ReturnType<typeof wire>;
}

/** Streams a test opened and has not closed yet: closed after each test, pass or fail. */
const openStreams = new Set<Stream>();

/** A fetch-based SSE client, as SPEC.md's example: reads the body and keeps what it got. */
class Stream {
  text = '';
  ended = false;
  private readonly reading: Promise<void>;

  constructor(
    readonly response: Response,
    private readonly controller: AbortController,
  ) {
    this.reading = this.read();
    openStreams.add(this);
  }

  private async read(): Promise<void> {
    const reader = this.response.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.text += decoder.decode(value, { stream: true });
      }
    } catch {
      // aborted by close()
    } finally {
      this.ended = true;
    }
  }

  /** The complete blocks (an event or a comment ends with a blank line). */
  get blocks(): string[] {
    return this.text.split('\n\n').slice(0, -1);
  }

  get events(): SseEvent[] {
    return this.blocks
      .filter((block) => block.includes('data: '))
      .map((block) => {
        const lines = block.split('\n');
        expect(lines).toHaveLength(2);
        expect(lines[0]).toMatch(/^id: /);
        expect(lines[1]).toMatch(/^data: /);
        return { id: lines[0].slice('id: '.length), data: JSON.parse(lines[1].slice('data: '.length)) };
      });
  }

  get ids(): string[] {
    return this.events.map((event) => event.id);
  }

  untilEvents(count: number, timeoutMs = 3000): Promise<SseEvent[]> {
    return until(() => this.events.length >= count && this.events, `${count} events`, timeoutMs);
  }

  /** Ends when the server ends the stream. */
  untilEnded(timeoutMs = 3000): Promise<true> {
    return until(() => this.ended, 'the stream to end', timeoutMs);
  }

  async close(): Promise<void> {
    openStreams.delete(this);
    this.controller.abort();
    await this.reading;
  }
}

async function openStream(ctx: ApiContext, user: TestUser, headers: Record<string, string> = {}): Promise<Stream> {
  const base = await ctx.listen();
  const controller = new AbortController();
  const response = await fetch(`${base}${SSE}`, {
    headers: { Authorization: `Token ${user.token}`, Accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  return new Stream(response, controller);
}

const IDLE = { users: 0, subscribers: 0, connections: 0, claimed: 0 };
const realtimeState = (ctx: ApiContext) => ({ ...ctx.services.hub.stats(), claimed: ctx.services.claims.size() });
const untilRealtimeIdle = (ctx: ApiContext) =>
  until(() => JSON.stringify(realtimeState(ctx)) === JSON.stringify(IDLE), 'the hub to be idle, nothing claimed');

function sseSuite(ctx: ApiContext, maxConnectionsPerUser: number) {
  const { freshUser, notify, getNotification, untilDelivered } = notificationFixtures(ctx, 18);
  afterEach(async () => {
    await Promise.all([...openStreams].map((stream) => stream.close()));
  });
  const untilIdle = () => untilRealtimeIdle(ctx);

  it('answers with event-stream headers and a retry hint', async () => {
    const ann = freshUser();
    const stream = await openStream(ctx, ann);
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.response.headers.get('cache-control')).toContain('no-cache');
    expect(stream.response.headers.get('x-accel-buffering')).toBe('no');
    await until(() => stream.blocks.length > 0, 'the first block');
    expect(stream.blocks[0]).toBe(`retry: ${ctx.services.realtime.retryMs}`);
    expect(ctx.services.hub.stats()).toEqual({ users: 1, subscribers: 1, connections: 1 });
    await stream.close();
    await untilIdle();
  });

  it('sends the undelivered first, then new ones live, each marked delivered once written', async () => {
    const ann = freshUser();
    const a = await notify(ann, 'waiting 1', 'WARNING');
    await pastCreation(a);
    const b = await notify(ann, 'waiting 2', 'ERROR');

    const stream = await openStream(ctx, ann);
    const backlog = await stream.untilEvents(2);
    expect(backlog).toEqual([
      { id: a.id, data: wire(a) },
      { id: b.id, data: wire(b) },
    ]);
    expect(stream.text).toContain(`id: ${a.id}\ndata: ${JSON.stringify(wire(a))}\n\n`);
    for (const row of [a, b]) {
      const delivered = await untilDelivered(ann, row.id);
      expect(delivered).toEqual({ ...wire(row), delivered: true, delivered_at: expect.any(String) });
    }

    const c = await notify(ann, 'live', 'SUCCESS');
    const all = await stream.untilEvents(3);
    expect(all[2]).toEqual({ id: c.id, data: wire(c) });
    const delivered = await untilDelivered(ann, c.id);
    expect(Date.parse(delivered.delivered_at)).toBeGreaterThanOrEqual(c.createdAt.getTime());

    // Nothing is sent twice on one stream.
    await sleep(300);
    expect(stream.ids).toEqual([a.id, b.id, c.id]);
    await stream.close();
    await untilIdle();
  });

  it('streams a backlog larger than one batch, in order, each once', async () => {
    const ann = freshUser();
    const rows: NotificationRow[] = [];
    for (let i = 0; i < 130; i++) {
      rows.push(await notify(ann, `bulk ${i}`));
      await pastCreation(rows[i]);
    }
    const stream = await openStream(ctx, ann);
    await stream.untilEvents(130, 5000);
    await untilDelivered(ann, rows[129].id);
    await sleep(200);
    expect(stream.ids).toEqual(rows.map((row) => row.id));
    const left = await ctx.http.get('/api/notifications/?delivered=false').set(ann.auth).expect(200);
    expect(left.body).toEqual([]);
    await stream.close();
    await untilIdle();
  });

  it(`sends a heartbeat comment (every ${HEARTBEAT_MS} ms here)`, async () => {
    const ann = freshUser();
    const started = Date.now();
    const stream = await openStream(ctx, ann);
    await until(() => stream.blocks.includes(': heartbeat'), 'a heartbeat', 1000);
    expect(Date.now() - started).toBeLessThan(1000);
    await sleep(5 * HEARTBEAT_MS);
    expect(stream.blocks.filter((block) => block === ': heartbeat').length).toBeGreaterThanOrEqual(3);
    await stream.close();
    await untilIdle();
  });

  it('takes Last-Event-ID on reconnect as delivery of that event, and ignores a malformed one', async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const seen = await notify(ann, 'received before the reconnect');
    const stream = await openStream(ctx, ann, { 'Last-Event-ID': seen.id });
    // Confirmed before the stream opens.
    expect(await getNotification(ann, seen.id)).toEqual({ ...wire(seen), delivered: true, delivered_at: expect.any(String) });
    const after = await notify(ann, 'after the reconnect');
    await stream.untilEvents(1);
    await sleep(200);
    expect(stream.events).toEqual([{ id: after.id, data: wire(after) }]);
    await stream.close();
    await untilIdle();

    // Another user's id in Last-Event-ID confirms nothing.
    const annsOwn = await notify(ann, 'not bob to confirm');
    const bobs = await openStream(ctx, bob, { 'Last-Event-ID': annsOwn.id });
    await until(() => bobs.blocks.length > 0, 'the retry line');
    await sleep(100);
    expect(await getNotification(ann, annsOwn.id)).toEqual(wire(annsOwn));
    expect(bobs.events).toEqual([]);
    await bobs.close();
    await untilIdle();

    // A malformed Last-Event-ID is ignored: the stream sends what is undelivered.
    let pending = [annsOwn];
    for (const malformed of ['not-a-uuid', '', `${seen.id}x`, "' OR 1=1 --"]) {
      const row = await notify(ann, `after Last-Event-ID ${JSON.stringify(malformed)}`);
      pending = [...pending, row];
      const stream2 = await openStream(ctx, ann, { 'Last-Event-ID': malformed });
      expect(await stream2.untilEvents(pending.length)).toEqual(pending.map((n) => ({ id: n.id, data: wire(n) })));
      for (const n of pending) await untilDelivered(ann, n.id);
      pending = [];
      await stream2.close();
      await untilIdle();
    }
  });

  it('cleans up when the client goes away: no subscriber, connection or heartbeat timer left', async () => {
    const ann = freshUser();
    const timers = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
    await untilIdle();
    const before = timers();
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval');
    try {
      const stream = await openStream(ctx, ann);
      await until(() => stream.blocks.includes(': heartbeat'), 'a heartbeat', 1000);
      expect(ctx.services.hub.stats()).toEqual({ users: 1, subscribers: 1, connections: 1 });
      const heartbeats = setIntervalSpy.mock.calls
        .map((call, i) => ({ ms: call[1], timer: setIntervalSpy.mock.results[i].value }))
        .filter((call) => call.ms === HEARTBEAT_MS);
      expect(heartbeats).toHaveLength(1);
      expect(clearIntervalSpy).not.toHaveBeenCalledWith(heartbeats[0].timer);

      await stream.close();
      await untilIdle();
      expect(clearIntervalSpy).toHaveBeenCalledWith(heartbeats[0].timer);
    } finally {
      setIntervalSpy.mockRestore();
      clearIntervalSpy.mockRestore();
    }
    // Nothing of the stream keeps the process alive (idle database-pool timers may only have expired since).
    await until(() => timers() <= before, 'no more timers than before the stream');
  });

  it('leaves nothing behind for a client that left before its stream started', async () => {
    const ann = freshUser();
    const pending = await notify(ann, 'still pending');
    const { hostname, port } = new URL(await ctx.listen());
    // The client sends its request and is gone while the server authenticates it (and, with
    // Last-Event-ID, confirms that event): the stream must not start on the closed socket.
    for (const extra of [`Last-Event-ID: ${pending.id}\r\n`, '']) {
      for (let i = 0; i < 4; i++) {
        const socket = net.connect(Number(port), hostname);
        await new Promise((resolve) => socket.once('connect', resolve));
        const request = `GET ${SSE} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Token ${ann.token}\r\n${extra}\r\n`;
        socket.write(request, () => socket.destroy());
      }
    }
    await sleep(200);
    await untilIdle();
    // The user is not locked out by leftovers of those.
    const stream = await openStream(ctx, ann);
    await until(() => stream.blocks.length > 0, 'the retry line');
    await stream.close();
    await untilIdle();
  });

  it('leaves a notification created after the client disconnected undelivered', async () => {
    const ann = freshUser();
    const stream = await openStream(ctx, ann);
    await until(() => stream.blocks.length > 0, 'the retry line');
    await stream.close();
    await untilIdle();
    const row = await notify(ann, 'too late');
    await sleep(300);
    expect(await getNotification(ann, row.id)).toEqual(wire(row));

    // The next stream gets it.
    const again = await openStream(ctx, ann);
    expect(await again.untilEvents(1)).toEqual([{ id: row.id, data: wire(row) }]);
    await untilDelivered(ann, row.id);
    await again.close();
    await untilIdle();
  });

  it(`caps streams and polls together at ${maxConnectionsPerUser} per user (429 + Retry-After)`, async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const base = await ctx.listen();
    const streams = [await openStream(ctx, ann)];
    const poll = ctx.http.get('/api/notifications/long-poll/?timeout=2').set(ann.auth).then((res) => res);
    await until(() => ctx.services.hub.stats().connections === maxConnectionsPerUser, 'the cap to be reached');
    expect(maxConnectionsPerUser).toBe(2);

    const refused = await fetch(`${base}${SSE}`, { headers: { Authorization: `Token ${ann.token}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await refused.json()).toEqual({ detail: expect.stringContaining(String(maxConnectionsPerUser)) });
    const refusedPoll = await ctx.http.get('/api/notifications/long-poll/?timeout=1').set(ann.auth).expect(429);
    expect(refusedPoll.headers['retry-after']).toBe('1');
    expect(ctx.services.hub.stats().connections).toBe(maxConnectionsPerUser);

    const bobs = await openStream(ctx, bob);
    await bobs.close();

    // The poll ends (timeout), which frees a slot for a second stream.
    expect((await poll).body).toMatchObject({ status: 'timeout', notifications: [] });
    await until(() => ctx.services.hub.stats().connections === 1, 'the poll to end');
    streams.push(await openStream(ctx, ann));
    expect(ctx.services.hub.stats().connections).toBe(2);
    for (const stream of streams) await stream.close();
    await untilIdle();
  });

  it('sends a notification on one of the user\'s connections, not on each', async () => {
    const ann = freshUser();
    const streams = [await openStream(ctx, ann), await openStream(ctx, ann)];
    await until(() => ctx.services.hub.stats().subscribers === 2, 'both streams to listen');
    const row = await notify(ann, 'for one of them');
    await untilDelivered(ann, row.id);
    await sleep(100);
    expect([...streams[0].ids, ...streams[1].ids]).toEqual([row.id]);
    for (const stream of streams) await stream.close();
    await untilIdle();
    // A poll opened now does not get it again either: it is delivered.
    const poll = await ctx.http.get('/api/notifications/long-poll/?timeout=1').set(ann.auth).expect(200);
    expect(poll.body).toMatchObject({ status: 'timeout', notifications: [] });
  });

  it("leaves out what a poll's answer carries until that answer is written or lost", async () => {
    const ann = freshUser();
    const row = await notify(ann, 'carried by a poll');
    const answer = await ctx.services.longPoll.wait(ann.id, 1000, stillThere);
    expect(answer.notifications.map((n) => n.id)).toEqual([row.id]);

    const stream = await openStream(ctx, ann);
    await until(() => stream.blocks.length > 0, 'the retry line');
    await sleep(100);
    expect(stream.ids).toEqual([]);
    // The poll's client never got it: the stream is offered it at once.
    ctx.services.claims.abandon(ann.id, [row.id]);
    expect(await stream.untilEvents(1)).toEqual([{ id: row.id, data: wire(row) }]);
    await untilDelivered(ann, row.id);
    await stream.close();
    await untilIdle();
  });

  it("never carries another user's notifications", async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const pending = await notify(ann, 'ann pending');
    const bobs = await openStream(ctx, bob);
    await until(() => bobs.blocks.length > 0, 'the retry line');
    const live = await notify(ann, 'ann live');
    const forBob = await notify(bob, 'bob live');
    await bobs.untilEvents(1);
    await sleep(300);
    expect(bobs.events).toEqual([{ id: forBob.id, data: wire(forBob) }]);
    for (const row of [pending, live]) expect(await getNotification(ann, row.id)).toEqual(wire(row));
    await bobs.close();
    await untilIdle();
  });

  it('answers 401 (plain JSON, not a stream) without a token or with a bad one', async () => {
    for (const auth of [{}, { Authorization: 'Token nope' }, { Authorization: 'Bearer nope' }]) {
      const res = await ctx.http.get(SSE).set(auth).set('Accept', 'text/event-stream').expect(401);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
    expect(realtimeState(ctx)).toEqual(IDLE);
  });

  it("works with SPEC.md's connectSSE client", async () => {
    const ann = freshUser();
    const baseUrl = await ctx.listen();
    const received: Array<{ id: string; message: string }> = [];
    const controller = new AbortController();
    const expected = 3;

    // SPEC.md's example, with the base URL prefixed and an AbortController to stop it.
    async function connectSSE(token: string) {
      const response = await fetch(`${baseUrl}/api/notifications/sse/`, {
        headers: {
          Authorization: `Token ${token}`,
          Accept: 'text/event-stream',
        },
        signal: controller.signal,
      });

      const reader = response.body!.getReader();
      const decoder = new TextDecoder();

      while (true) {
        const { done, value } = await reader.read();
        if (done) break;

        const chunk = decoder.decode(value);
        const lines = chunk.split('\n');

        for (const line of lines) {
          if (line.startsWith('data: ')) {
            const data = line.substring(6);
            const notification = JSON.parse(data);
            received.push(notification);
            // Notification is automatically marked as delivered by the server
            if (received.length >= expected) controller.abort();
          }
        }
      }
    }

    const first = await notify(ann, 'before connecting');
    const deadline = setTimeout(() => controller.abort(), 5000);
    const client = connectSSE(ann.token).then(
      () => 'ended',
      (error: Error) => error.name,
    );
    await until(() => received.length === 1, 'the backlog');
    const second = await notify(ann, 'while connected');
    await sleep(200);
    const third = await notify(ann, 'a bit later');
    expect(await client).toBe('AbortError');
    clearTimeout(deadline);
    expect(received.map((n) => [n.id, n.message])).toEqual([first, second, third].map((row) => [row.id, row.message]));
    for (const row of [first, second, third]) await untilDelivered(ann, row.id);
    await untilIdle();
  });
}

describeApi('notifications SSE', (ctx) => sseSuite(ctx, 2), {
  realtime: { heartbeatMs: HEARTBEAT_MS, maxConnectionsPerUser: 2 },
});

describeApi(
  'notifications SSE: graceful shutdown',
  (ctx) => {
    it('ends open streams and waiting polls when the hub closes', async () => {
      const [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
      const stream = await openStream(ctx, ann);
      await until(() => stream.blocks.length > 0, 'the retry line');
      const started = Date.now();
      const poll = ctx.http.get('/api/notifications/long-poll/?timeout=20').set(bob.auth).then((res) => res);
      await until(() => ctx.services.hub.stats().subscribers === 2, 'both to wait');

      ctx.services.hub.close();
      await stream.untilEnded(2000);
      expect(stream.text.endsWith('\n\n')).toBe(true);
      const res = await poll;
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(3000);
      await untilRealtimeIdle(ctx);

      // A stream opened after shutdown ends at once.
      const late = await openStream(ctx, ann);
      await late.untilEnded(2000);
      expect(realtimeState(ctx)).toEqual(IDLE);
    });
  },
  { realtime: { heartbeatMs: HEARTBEAT_MS } },
);

import net from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { REALTIME_DEFAULTS } from '../server/app';
import type { NotificationRow } from '../server/notifications/notifications.service';
import { graceForStrayEvents, pastCreation, SLACK_MS, until, wire } from './support/waiting';
import { BULKY_MESSAGE, notificationFixtures, serveOnUnixSocket, stillThere } from './support/notification-fixtures';
import { anotherSession, describeApi, type ApiContext, type TestUser } from './support/api';

const SSE = '/api/notifications/sse/';
const HEARTBEAT_MS = 100;

interface SseEvent {
  id: string;
  data: ReturnType<typeof wire>;
}

/** Streams a test opened and has not closed yet: closed after each test, pass or fail. */
const openStreams = new Set<Stream>();

/**
 * A fetch-based SSE client, as SPEC.md's example: reads the body and keeps what it got. A stream
 * that breaks off (reset, aborted by anything but close()) is a failure, not an end: waiting on it
 * and closing it throw, and so does the afterEach that closes what a test left open.
 */
class Stream {
  text = '';
  /** The server ended the stream (the response completed). */
  ended = false;
  /** Why reading failed, when it did other than by close(). */
  failure: unknown;
  private closing = false;
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
      this.ended = true;
    } catch (error) {
      if (!this.closing) this.failure = error;
    }
  }

  /** Throws if the stream broke off: whatever a test waits for will not come. */
  private checkIntact(): void {
    if (this.failure !== undefined) throw new Error('the SSE stream broke off', { cause: this.failure });
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

  untilEvents(count: number, timeoutMs?: number): Promise<SseEvent[]> {
    return until(
      () => {
        this.checkIntact();
        return this.events.length >= count && this.events;
      },
      `${count} events`,
      timeoutMs,
    );
  }

  /** Resolves when the server ends the stream; throws if it broke off instead. */
  untilEnded(timeoutMs?: number): Promise<true> {
    return until(
      () => {
        this.checkIntact();
        return this.ended;
      },
      'the stream to end',
      timeoutMs,
    );
  }

  /** Closes the stream from the client's side; throws if it had broken off before. */
  async close(): Promise<void> {
    openStreams.delete(this);
    this.closing = true;
    this.controller.abort();
    await this.reading;
    this.checkIntact();
  }
}

/** Closes the streams a test left open (pass or fail); fails the test if one of them broke off. */
async function closeOpenStreams(): Promise<void> {
  const results = await Promise.allSettled([...openStreams].map((stream) => stream.close()));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
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
  const { freshUser, notify, insertUnannounced, getNotification, untilDelivered, readsDone, taken, lastTaken, untilReadsDone } =
    notificationFixtures(ctx, 22);
  afterEach(closeOpenStreams);
  const untilIdle = () => untilRealtimeIdle(ctx);
  /** Opens a stream and resolves once its first read is done: it waits for what comes next. */
  const openWaitingStream = async (user: TestUser) => {
    const before = readsDone(user);
    const stream = await openStream(ctx, user);
    await untilReadsDone(user, before + 1, "the stream's first read");
    return stream;
  };

  it('ends a stream once its token is logged out, and sends it nothing more; the user’s other session streams on', async () => {
    const ann = freshUser();
    const other = await anotherSession(ctx, ann);
    const revoked = await openWaitingStream(ann);
    const kept = await openWaitingStream(other);
    await ctx.http.post('/auth/token/logout/').set(ann.auth).expect(204);
    await revoked.untilEnded();
    const row = await notify(ann, 'after the logout');
    expect((await kept.untilEvents(1)).map((event) => event.id)).toEqual([row.id]);
    expect(revoked.ids).toEqual([]);
    await untilDelivered(other, row.id);
    await kept.close();
    await untilIdle();
  });

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

    // Nothing is sent twice on one stream (a second copy would show in this time).
    await graceForStrayEvents();
    expect(stream.ids).toEqual([a.id, b.id, c.id]);
    await stream.close();
    await untilIdle();
  });

  it('sends again, a moment later, an event whose delivery mark failed, and marks it then', async () => {
    const ann = freshUser();
    const stream = await openWaitingStream(ann);
    // The client has the event, but the database refuses to mark it delivered: a stream reads only
    // when woken, so without a wake-up it would stay undelivered until the user's next notification.
    ctx.failQueries('update "notifications" set "delivered_at"');
    const row = await notify(ann, 'marked on the second try');
    await stream.untilEvents(2);
    expect(stream.ids).toEqual([row.id, row.id]);
    expect(await untilDelivered(ann, row.id)).toMatchObject({ delivered: true });
    await graceForStrayEvents();
    expect(stream.ids).toEqual([row.id, row.id]);
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
    await stream.untilEvents(130);
    await untilDelivered(ann, rows[129].id);
    await graceForStrayEvents(); // a second copy of any would show in this time
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
    const heartbeats = () => stream.blocks.filter((block) => block === ': heartbeat').length;
    await until(() => heartbeats() >= 3, '3 heartbeats');
    // Not sooner than every HEARTBEAT_MS (the interval itself is checked in the clean-up test).
    expect(Date.now() - started).toBeGreaterThanOrEqual(3 * HEARTBEAT_MS - 5);
    expect(stream.blocks.every((block) => block === ': heartbeat' || block.startsWith('retry: '))).toBe(true);
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
    await graceForStrayEvents(); // anything sent besides would show in this time
    expect(stream.events).toEqual([{ id: after.id, data: wire(after) }]);
    await stream.close();
    await untilIdle();

    // Another user's id in Last-Event-ID confirms nothing.
    const annsOwn = await notify(ann, 'not bob to confirm');
    const bobs = await openStream(ctx, bob, { 'Last-Event-ID': annsOwn.id });
    await until(() => bobs.blocks.length > 0, 'the retry line');
    // Last-Event-ID is confirmed before the stream's headers go out: by now it has been, or not at all.
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

  it("confirms nothing of another user's from Last-Event-ID, even beside that user's own deliveries of the same moment", async () => {
    const [ann, bob] = [freshUser(), freshUser()];
    const annsOther = await notify(ann, 'not bob to confirm');
    const annsReceived = await notify(ann, 'received by ann');
    // Ann's delivery is confirmed in the very turn of the event loop in which bob's stream opens: the
    // deliveries of a moment are marked by one statement (the service's batch).
    const { hub, notifications } = ctx.services;
    const acquire = hub.acquireConnection.bind(hub);
    const acquired = vi.spyOn(hub, 'acquireConnection').mockImplementation((userId) => {
      if (userId === bob.id) void notifications.confirmDelivery(ann.id, [annsReceived.id]);
      return acquire(userId);
    });
    try {
      const bobs = await openStream(ctx, bob, { 'Last-Event-ID': annsOther.id });
      await until(() => bobs.blocks.length > 0, 'the retry line');
      await untilDelivered(ann, annsReceived.id);
      expect(await getNotification(ann, annsOther.id)).toEqual(wire(annsOther));
      await bobs.close();
      await untilIdle();
    } finally {
      acquired.mockRestore();
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
      await until(() => stream.blocks.includes(': heartbeat'), 'a heartbeat');
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
    const acquired = vi.spyOn(ctx.services.hub, 'acquireConnection');
    try {
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
      await until(() => acquired.mock.calls.filter(([userId]) => userId === ann.id).length === 8, 'the 8 requests to reach the handler');
    } finally {
      acquired.mockRestore();
    }
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
    await graceForStrayEvents(); // a delivery to the closed stream would show in this time
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
    // 5 s: time enough for a loaded machine to make the checks below while the poll is open.
    const poll = ctx.http.get('/api/notifications/long-poll/?timeout=5').set(ann.auth).then((res) => res);
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
    await graceForStrayEvents(); // a copy on the other stream would show in this time
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

    const stream = await openWaitingStream(ann);
    // Its read left the claimed one out: nothing to send.
    expect(lastTaken(ann)).toEqual([]);
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
    await graceForStrayEvents(); // one of ann's would show in this time
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
    // Only a stop for a client that would otherwise hang: the test waits on conditions.
    const deadline = setTimeout(() => controller.abort(), 25_000);
    const client = connectSSE(ann.token).then(
      () => 'ended',
      (error: Error) => error.name,
    );
    try {
      await until(() => received.length === 1, 'the backlog');
      const second = await notify(ann, 'while connected');
      await until(() => received.length === 2, 'the second');
      const third = await notify(ann, 'a bit later');
      expect(await client).toBe('AbortError');
      expect(received.map((n) => [n.id, n.message])).toEqual([first, second, third].map((row) => [row.id, row.message]));
      for (const row of [first, second, third]) await untilDelivered(ann, row.id);
    } finally {
      clearTimeout(deadline);
      controller.abort();
    }
    await untilIdle();
  });

  it('sends a waiting stream what POST delivery-status/ (retry) is asked for', async () => {
    const ann = freshUser();
    const stream = await openWaitingStream(ann);
    // Written without a wake-up (as one whose wake-up was lost): only the retry tells the stream.
    const row = await insertUnannounced(ann, 'announced by the retry');
    expect(readsDone(ann)).toBe(1); // nothing has woken it

    const retried = await ctx.http.post('/api/notifications/delivery-status/').set(ann.auth).send({ notification_ids: [row.id] }).expect(200);
    expect(retried.body.retry_count).toBe(1);
    expect(await stream.untilEvents(1)).toEqual([{ id: row.id, data: wire(row) }]);
    await untilDelivered(ann, row.id);

    // Without ids: all of the user's undelivered ones.
    const another = await insertUnannounced(ann, 'announced by a retry of all');
    await ctx.http.post('/api/notifications/delivery-status/').set(ann.auth).expect(200);
    expect((await stream.untilEvents(2))[1]).toEqual({ id: another.id, data: wire(another) });
    await untilDelivered(ann, another.id);
    await stream.close();
    await untilIdle();
  });

  it('leaves undelivered, and sends again, what a stream was still writing when its client reset the connection', async () => {
    const ann = freshUser();
    const rows: NotificationRow[] = [];
    for (let i = 0; i < 100; i++) {
      rows.push(await notify(ann, BULKY_MESSAGE));
      await pastCreation(rows[i]); // a distinct created_at each: they are sent in creation order
    }
    const server = await serveOnUnixSocket(ctx);
    try {
      // A real client on a real socket that reads nothing: the stream writes its backlog at it.
      const client = await server.send(ann, SSE);
      // Its first read takes all 100 (a full batch, so it reads once more and finds nothing new).
      await until(() => taken(ann).flat().length === 100, "the stream's read of the backlog");
      expect(taken(ann).flat()).toEqual(rows.map((row) => row.id));
      const socket = server.responses[0].socket!;
      // Every one of the 100 events is still in the socket's write (none has been taken whole), so
      // none has been written yet.
      const eventBytes = rows.reduce((sum, row) => sum + Buffer.byteLength(`id: ${row.id}\ndata: ${JSON.stringify(wire(row))}\n\n`), 0);
      await until(() => socket.writableLength >= eventBytes, 'the events to be written to the socket');

      client.destroy();
      await until(() => server.responses[0].destroyed, 'the server to see the connection gone');
      await until(() => ctx.services.claims.size() === 0, 'the claims to be handed back');
      const status = await ctx.http.get('/api/notifications/delivery-status/').set(ann.auth).expect(200);
      expect(status.body).toMatchObject({ total: 100, delivered: 0, undelivered: 100 });

      const again = await openStream(ctx, ann);
      expect((await again.untilEvents(100)).map((event) => event.id)).toEqual(rows.map((row) => row.id));
      await untilDelivered(ann, rows[99].id);
      await again.close();
    } finally {
      await server.close();
    }
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
      await stream.untilEnded();
      expect(stream.text.endsWith('\n\n')).toBe(true);
      const res = await poll;
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('timeout');
      // Ended by the shutdown, well before its 20 s.
      expect(Date.now() - started).toBeLessThan(20_000 - SLACK_MS);
      await untilRealtimeIdle(ctx);

      // A stream opened after shutdown ends at once.
      const late = await openStream(ctx, ann);
      await late.untilEnded();
      expect(realtimeState(ctx)).toEqual(IDLE);
    });
  },
  { realtime: { heartbeatMs: HEARTBEAT_MS } },
);

describeApi(
  'notifications SSE: graceful shutdown of a stream whose client reads slowly',
  (ctx) => {
    it('writes nothing after ending the stream (a write after end is an error event that would crash the process)', async () => {
      const ann = await ctx.createUser();
      const rows: NotificationRow[] = [];
      for (let i = 0; i < 20; i++) rows.push((await ctx.services.notifications.notify([ann.id], { type: 'INFO', message: BULKY_MESSAGE }))[0]);
      const server = await serveOnUnixSocket(ctx);
      try {
        // A client that reads nothing yet: the stream's backlog stays in its buffers, so the end
        // written at shutdown cannot finish, and the response stays open ('close' not yet emitted).
        const client = await server.send(ann, SSE);
        await until(() => ctx.services.claims.size() === rows.length, "the stream's read of the backlog");
        const res = server.responses[0];
        await until(() => res.socket !== null && res.socket.writableLength > 0, 'the events to back up in the socket');
        // Node emits 'error' on a response written after its end, and with no listener that is an
        // uncaught exception: heard here, so that the test can tell instead of the runner crashing.
        const errors: unknown[] = [];
        res.on('error', (error) => errors.push(error));

        ctx.services.hub.close();
        expect(res.writableEnded).toBe(true);
        await graceForStrayEvents(); // heartbeats due every 100 ms would have been written after the end
        expect(errors).toEqual([]);

        // The client reads at last: it gets the whole backlog, then the end; each event is marked delivered.
        let received = '';
        client.on('data', (chunk: Buffer) => (received += chunk.toString()));
        client.resume();
        await until(() => received.endsWith('0\r\n\r\n'), 'the end of the stream');
        const sent = received.match(/^id: .*$/gm)!.map((line) => line.slice('id: '.length));
        expect(sent.sort()).toEqual(rows.map((row) => row.id).sort());
        await untilRealtimeIdle(ctx);
        const status = await ctx.http.get('/api/notifications/delivery-status/').set(ann.auth).expect(200);
        expect(status.body).toMatchObject({ total: rows.length, delivered: rows.length });
        expect(errors).toEqual([]);
      } finally {
        await server.close();
      }
    });
  },
  { realtime: { heartbeatMs: HEARTBEAT_MS } },
);

describeApi('notifications SSE with the real-time defaults', (ctx) => {
  const { freshUser, notify } = notificationFixtures(ctx, 1);
  afterEach(closeOpenStreams);

  it(`hints retry: ${REALTIME_DEFAULTS.retryMs} and sends a heartbeat every ${REALTIME_DEFAULTS.heartbeatMs / 1000} s`, async () => {
    expect(REALTIME_DEFAULTS).toMatchObject({ heartbeatMs: 15_000, retryMs: 3000, maxBufferedBytes: 4 * 1024 * 1024 });
    // Built without overrides: these are what production runs with.
    expect(ctx.services.realtime).toEqual(REALTIME_DEFAULTS);
    const ann = freshUser();
    // Only intervals are faked (the heartbeat's): sockets and everything else run as they do.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const stream = await openStream(ctx, ann);
      await until(() => stream.blocks.length > 0, 'the retry line');
      expect(stream.blocks[0]).toBe('retry: 3000');
      const heartbeats = () => stream.blocks.filter((block) => block === ': heartbeat').length;

      vi.advanceTimersByTime(14_999);
      // A heartbeat due by now would have been written before this event.
      await notify(ann, 'at 14.999 s');
      await stream.untilEvents(1);
      expect(heartbeats()).toBe(0);
      vi.advanceTimersByTime(1);
      await until(() => heartbeats() === 1, 'the heartbeat at 15 s');
      vi.advanceTimersByTime(15_000);
      await until(() => heartbeats() === 2, 'the heartbeat at 30 s');
      await stream.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describeApi(
  'notifications SSE: a client that stops reading',
  (ctx) => {
    it('closes the stream past the buffer limit, and leaves what it had not written undelivered for the next connection', async () => {
      const user = await ctx.createUser();
      const base = new URL(await ctx.listen());
      // A client that sends its request and never reads a byte of the answer.
      const socket = net.connect(Number(base.port), base.hostname);
      socket.pause();
      socket.on('error', () => {});
      socket.write(`GET ${SSE} HTTP/1.1\r\nHost: ${base.host}\r\nAuthorization: Token ${user.token}\r\nAccept: text/event-stream\r\n\r\n`);
      await until(() => ctx.services.hub.stats().connections === 1, 'the stream to open');

      // About 6 MB of events: more than the kernel's socket buffers take, so the stream's own buffer grows.
      const { t } = ctx.database.store;
      const total = 3000;
      const createdAt = new Date();
      await ctx.database.store.insertAll(
        t.notifications,
        Array.from({ length: total }, (_, i) => ({ id: crypto.randomUUID(), userId: user.id, type: 'INFO', message: `${i} ${BULKY_MESSAGE}`, createdAt, deliveredAt: null, readAt: null })),
      );
      await ctx.services.notifications.notify([user.id], { type: 'INFO', message: 'wake up' });

      await until(() => ctx.services.hub.stats().connections === 0, 'the server to close the stream', 20_000);
      socket.destroy();
      // Marked delivered: only what reached the kernel's buffers before the limit; not the rest.
      const status = (await ctx.http.get('/api/notifications/delivery-status/').set(user.auth).expect(200)).body;
      expect(status.total).toBe(total + 1);
      expect(status.undelivered).toBeGreaterThan(0);
      // What it had not written was given back: the next connection gets it at once.
      const next = await ctx.http.get('/api/notifications/long-poll/?timeout=1').set(user.auth).expect(200);
      expect(next.body.status).toBe('immediate');
      expect(next.body.notifications.length).toBeGreaterThan(0);
    }, 60_000);
  },
  { realtime: { maxBufferedBytes: 64 * 1024 } },
);

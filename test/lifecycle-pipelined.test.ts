// A client may pipeline: send its next request on a connection before the answer to the one before
// has come. Node then serves both at once, but hands the later response its socket only once the
// earlier one is written; until then the response has no socket, and when the client goes away
// meanwhile node closes only the response that holds the socket — the queued one hears neither
// 'finish' nor 'close' (only its request hears 'close'). A long-poll answer or a stream queued so
// must still end in "lost": nothing may stay claimed, subscribed or counted. Real sockets, real app.
import net from 'node:net';
import { expect, it } from 'vitest';
import { notificationFixtures } from './support/notification-fixtures';
import { describeApi, type ApiContext, type TestUser } from './support/api';
import { until } from './support/waiting';

const POLL = '/api/notifications/long-poll/';
const SSE = '/api/notifications/sse/';

describeApi('requests pipelined behind a waiting long-poll, whose client goes away', (ctx: ApiContext) => {
  const { freshUser, notify, untilDelivered, readsDone, untilReadsDone } = notificationFixtures(ctx, 10);

  const idle = () => {
    const stats = ctx.services.hub.stats();
    return stats.users === 0 && stats.subscribers === 0 && stats.connections === 0 && ctx.services.claims.size() === 0;
  };

  /** A connection of its own to the app, and the text of a GET of `target` with `user`'s token, to send on it. */
  async function connection() {
    const { hostname, port } = new URL(await ctx.listen());
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const get = (user: TestUser, target: string) => `GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Token ${user.token}\r\n\r\n`;
    return { socket, get };
  }

  /**
   * One connection: a long-poll of `first` (which has nothing, and waits), then, pipelined behind it,
   * GET `second` for `owner`; waits until the owner's request has read (its answer is queued behind
   * the waiting poll's), then the client goes away.
   */
  async function pipelinedThenGone(first: TestUser, owner: TestUser, second: string) {
    const { socket, get } = await connection();
    const before = readsDone(owner);
    socket.write(get(first, `${POLL}?timeout=20`) + get(owner, second));
    await untilReadsDone(owner, before + 1, 'the pipelined request to have read');
    await until(() => ctx.services.claims.size() > 0, 'its notification to be claimed');
    socket.destroy();
  }

  it('offers again what a queued long-poll answer carried, and frees everything', async () => {
    const [waiter, ann] = [freshUser(), freshUser()];
    const row = await notify(ann, 'queued behind another answer');
    await pipelinedThenGone(waiter, ann, `${POLL}?timeout=5`);
    await until(idle, 'nothing claimed, subscribed or counted');
    const res = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(200);
    expect(res.body.notifications.map((n: { id: string }) => n.id)).toEqual([row.id]);
    await untilDelivered(ann, row.id);
  });

  it("ends a queued poll's wait when its client goes away, not at its timeout", async () => {
    const [waiter, ann] = [freshUser(), freshUser()];
    const { socket, get } = await connection();
    const before = readsDone(ann);
    socket.write(get(waiter, `${POLL}?timeout=30`) + get(ann, `${POLL}?timeout=30`));
    await untilReadsDone(ann, before + 1, 'the queued poll to wait');
    expect(ctx.services.hub.stats()).toEqual({ users: 2, subscribers: 2, connections: 2 });
    socket.destroy();
    await until(idle, 'both waits to end');
  });

  it('marks a queued answer delivered once it has gone out to a client that stays', async () => {
    const [waiter, ann] = [freshUser(), freshUser()];
    const row = await notify(ann, 'written after the answer before it');
    const { socket, get } = await connection();
    let received = '';
    socket.on('data', (chunk) => (received += chunk));
    socket.write(get(waiter, `${POLL}?timeout=1`) + get(ann, `${POLL}?timeout=5`));
    await until(() => received.includes(row.id), 'the queued answer');
    await untilDelivered(ann, row.id);
    await until(idle, 'nothing claimed, subscribed or counted');
    socket.destroy();
  });

  it('logs and counts a queued express request whose client goes away', async () => {
    const [waiter, ann] = [freshUser(), freshUser()];
    // A route served by express (not before it, as the long-poll is): its answer is written into a
    // response still waiting for the socket; only the request's 'close' tells that the client left.
    const counted = async () => {
      const lines = (await ctx.services.metrics.registry.metrics()).split('\n');
      const mine = lines.filter((line) => line.startsWith('punchclock_http_requests_total{method="GET",route="/api/projects/"'));
      return mine.reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
    };
    const before = await counted();
    const queries = ctx.queryCount();
    const { socket, get } = await connection();
    socket.write(get(waiter, `${POLL}?timeout=20`) + get(ann, '/api/projects/'));
    await until(() => ctx.queriesSince(queries).some((sql) => sql.includes('from "projects"')), 'the queued request to read its projects');
    socket.destroy();
    await until(async () => (await counted()) === before + 1, 'the queued request to be counted');
    await until(idle, 'nothing claimed, subscribed or counted');
  });

  it('closes a queued stream: its claim, subscription and connection slot are given back', async () => {
    const [waiter, ann] = [freshUser(), freshUser()];
    const row = await notify(ann, 'streamed behind another answer');
    await pipelinedThenGone(waiter, ann, SSE);
    await until(idle, 'nothing claimed, subscribed or counted');
    const res = await ctx.http.get(`${POLL}?timeout=1`).set(ann.auth).expect(200);
    expect(res.body.notifications.map((n: { id: string }) => n.id)).toEqual([row.id]);
    await untilDelivered(ann, row.id);
  });
});

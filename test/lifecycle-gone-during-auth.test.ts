// A request served before express (http/lean-route.ts) is tracked — its access line, its request
// metrics, its deadline — only once its token has been looked up. A client that left during that
// look-up has closed its response already ('close' was emitted before anything listened): the
// tracking must still end, at once, for it.
import { expect, it, vi } from 'vitest';
import { contract } from '../contract';
import type { AuthenticatedSession } from '../server/auth/sessions.service';
import { RequestDeadline } from '../server/http/request-deadline';
import { describeApi, type ApiContext } from './support/api';
import { serveOnUnixSocket } from './support/notification-fixtures';
import { until } from './support/waiting';

const POLL = contract.notifications.longPoll.path;
const ME = contract.auth.me.path;

describeApi('requests served before express whose client left during authentication', (ctx: ApiContext) => {
  it('are counted in the metrics as they end (long-poll and hot read alike), and taken off the deadline', async () => {
    const user = await ctx.createUser();
    const server = await serveOnUnixSocket(ctx);
    const { sessions, metrics, longPoll } = ctx.services;
    // Authentication answers only once the client's response has closed: the client left during it.
    const authenticate = sessions.whenAuthenticated.bind(sessions);
    const authenticating = vi.spyOn(sessions, 'whenAuthenticated').mockImplementation((authorization, admit, refuse) => {
      // (The server notes the response after the app has begun to serve it.)
      const index = server.responses.length;
      const admitOnceClosed = (session: AuthenticatedSession) =>
        void until(() => server.responses[index]?.destroyed, 'the response to close').then(() => admit(session), refuse);
      authenticate(authorization, admitOnceClosed, refuse);
    });
    const counted = vi.spyOn(metrics, 'request');
    const waits = vi.spyOn(longPoll, 'wait');
    const watched = vi.spyOn(RequestDeadline.prototype, 'watch');
    /** The requests the deadline still waits on, of those put on it (a private map: nothing else tells). */
    const onDeadline = () =>
      watched.mock.calls.filter(([res], i) => (watched.mock.contexts[i] as unknown as { inFlight: Map<unknown, unknown> }).inFlight.has(res)).length;
    const countedFor = (route: string) => counted.mock.calls.filter((call) => call[1] === route).length;
    try {
      for (const target of [`${POLL}?timeout=20`, ME]) {
        const socket = await server.send(user, target);
        await until(() => authenticating.mock.calls.length > 0, 'the request to be authenticated');
        socket.destroy();
        await until(() => server.responses.at(-1)!.destroyed, 'the server to see the client go');
        authenticating.mockClear();
      }
      await until(() => waits.mock.settledResults.some((result) => result.type !== 'incomplete'), 'the poll to end');
      await until(() => countedFor(POLL) === 1 && countedFor(ME) === 1, 'each request to be counted').catch(() => {
        throw new Error(`counted ${countedFor(POLL)} long-poll and ${countedFor(ME)} read, of 1 each`);
      });
      // The read is on the deadline (30 s), and was answered, to no one: not waited on any more.
      expect(watched).toHaveBeenCalled();
      await until(() => onDeadline() === 0, 'the deadline to let go of the read').catch(() => {
        throw new Error(`the deadline still waits on ${onDeadline()} request(s)`);
      });
    } finally {
      watched.mockRestore();
      authenticating.mockRestore();
      counted.mockRestore();
      waits.mockRestore();
      await server.close();
    }
    expect(ctx.services.hub.stats()).toEqual({ users: 0, subscribers: 0, connections: 0 });
  });
});

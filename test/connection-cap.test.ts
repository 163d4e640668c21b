// README, "Limits": "at most 6 long-polls and SSE streams together per user; one more is refused
// with 429 and Retry-After: 1. This guards the server's memory, so it stays on with RATE_LIMITS=off."
// The app as RATE_LIMITS=off configures it, with the real-time defaults (no cap of the test's own).
import { expect, it } from 'vitest';
import { loadConfig } from '../server/config';
import { describeApi, uniqueName, type TestUser } from './support/api';
import { insertCheapUsers } from './support/cheap-users';
import { until } from './support/waiting';

const CAP = 6;

interface Connection {
  /** The status once the response (its headers, for a stream) has come. */
  status: Promise<number>;
  close(): void;
}

function open(base: string, user: TestUser, kind: 'long-poll' | 'sse'): Connection {
  const controller = new AbortController();
  const path = kind === 'sse' ? '/api/notifications/sse/' : '/api/notifications/long-poll/?timeout=60';
  // The response is held for as long as the connection: fetch closes the connection of a response
  // that is garbage-collected with its body unread, which would free its place behind the test's back.
  let held: Response | undefined;
  const status = fetch(base + path, { headers: user.auth, signal: controller.signal }).then((res) => {
    held = res;
    return res.status;
  });
  status.catch(() => {}); // aborted by close()
  return {
    status,
    close: () => {
      controller.abort();
      held?.body?.cancel().catch(() => {});
      held = undefined;
    },
  };
}

/** Opens one more connection for the user; its status and headers (a long-poll's whole answer, after its 1 s). */
async function oneMore(base: string, user: TestUser, kind: 'long-poll' | 'sse') {
  const path = kind === 'sse' ? '/api/notifications/sse/' : '/api/notifications/long-poll/?timeout=1';
  const res = await fetch(base + path, { headers: user.auth, signal: AbortSignal.timeout(10_000) });
  // A stream that was let in never ends: its body is read only when it was refused.
  const body = kind === 'sse' && res.status === 200 ? void (await res.body?.cancel()) : await res.json();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
}

describeApi(
  'open notification connections with RATE_LIMITS=off',
  (ctx) => {
    const openConnections = () => ctx.services.hub.stats().connections;

    /** Opens the connections, waits until the server holds them all; closes them and waits for their release after `body`. */
    async function withConnections(
      user: TestUser,
      kinds: Array<'long-poll' | 'sse'>,
      body: (connections: Connection[], base: string) => Promise<void>,
    ) {
      const base = await ctx.listen();
      const before = openConnections();
      const connections = kinds.map((kind) => open(base, user, kind));
      try {
        await until(() => openConnections() === before + kinds.length, `${kinds.length} connections to be open`);
        await body(connections, base);
      } finally {
        for (const connection of connections) connection.close();
        await until(() => openConnections() <= before, 'the connections to be released');
      }
    }

    it('has RATE_LIMITS=off in effect: failed logins beyond the limit are not refused', async () => {
      const username = uniqueName();
      await insertCheapUsers(ctx.database.store, [username]);
      const statuses: number[] = [];
      for (let attempt = 1; attempt <= 11; attempt++) {
        statuses.push((await ctx.http.post('/auth/token/login/').send({ username, password: `wrong ${attempt}` })).status);
      }
      expect(statuses).toEqual(Array(11).fill(400));
    });

    it(`refuses a user's ${CAP + 1}th long-poll with 429 and Retry-After: 1; other users are not affected`, async () => {
      const [ann, bob] = await Promise.all([ctx.createUser(), ctx.createUser()]);
      await withConnections(ann, Array(CAP).fill('long-poll'), async (polls, base) => {
        const refused = await oneMore(base, ann, 'long-poll');
        expect(refused.status).toBe(429);
        expect(refused.retryAfter).toBe('1');
        expect(refused.body).toEqual({ detail: expect.stringContaining(String(CAP)) });

        // Another user's poll is served (it times out after its second).
        const other = await oneMore(base, bob, 'long-poll');
        expect(other.status).toBe(200);
        expect(other.body).toMatchObject({ status: 'timeout' });

        // Once one of ann's ends, she may open one again.
        const before = openConnections();
        polls[0].close();
        await until(() => openConnections() === before - 1, 'the closed poll to be released');
        const again = await oneMore(base, ann, 'long-poll');
        expect(again.status).toBe(200);
      });
    });

    it(`counts long-polls and SSE streams together: with ${CAP / 2} of each, one more of either is refused`, async () => {
      const ann = await ctx.createUser();
      const kinds = [...Array(CAP / 2).fill('long-poll'), ...Array(CAP / 2).fill('sse')];
      await withConnections(ann, kinds, async (connections, base) => {
        // The streams' headers came: they were counted before anything was written.
        for (const stream of connections.slice(CAP / 2)) expect(await stream.status).toBe(200);
        for (const kind of ['long-poll', 'sse'] as const) {
          const refused = await oneMore(base, ann, kind);
          expect(refused.status, kind).toBe(429);
          expect(refused.retryAfter, kind).toBe('1');
        }
      });
    });
  },
  { rateLimits: loadConfig({ RATE_LIMITS: 'off' }).rateLimits },
);

// SIGKILL while delivering (issue 17): a real server process is killed in the middle of a flow of
// notifications to long-polling clients. After a restart on the same database every notification a
// client was told was created still exists, none is marked delivered that no client received, and
// what was not delivered comes on the next poll: nothing lost, at-least-once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { call, registerUser, startServer, type ChildServer, type ChildUser } from './support/child-server';
import { sleep, until } from './support/waiting';

const USERS = 4;

describe('SIGKILL mid-delivery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'punchclock-kill-'));
  const env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` };
  let server: ChildServer | undefined;
  afterAll(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves each notification delivered (a client got it) or undelivered (it comes again), never marked delivered unseen', async () => {
    server = await startServer(env);
    const base = server.base;
    const users: ChildUser[] = [];
    for (let i = 0; i < USERS; i++) users.push(await registerUser(base));
    const created = new Map<number, Set<string>>(users.map((user) => [user.id, new Set()]));
    const received = new Map<number, Set<string>>(users.map((user) => [user.id, new Set()]));
    let running = true;

    // Each user long-polls without pause and keeps what it was answered, whole answers only.
    const pollers = users.map(async (user) => {
      while (running) {
        try {
          const answer = await call(base, 'GET', '/api/notifications/long-poll/?timeout=5', { token: user.token });
          for (const notification of answer.body?.notifications ?? []) received.get(user.id)!.add(notification.id);
        } catch {
          await sleep(20); // the server is gone: no answer is no notification
        }
      }
    });
    // Each user makes notifications of its own, one after another; a 201 means it exists.
    const producers = users.map(async (user) => {
      while (running) {
        try {
          const answer = await call(base, 'POST', '/api/notifications/test/', { token: user.token, body: { type: 'INFO', message: 'in flight' } });
          if (answer.status === 201) created.get(user.id)!.add(answer.body.id);
        } catch {
          await sleep(20);
        }
      }
    });

    await until(() => [...received.values()].every((ids) => ids.size >= 5), 'deliveries under way', 20_000);
    server.process.kill('SIGKILL');
    await server.exited;
    running = false;
    await Promise.all([...pollers, ...producers]);

    server = await startServer(env);
    for (const user of users) {
      const stored = await allNotifications(server.base, user);
      const storedIds = new Set(stored.map((notification) => notification.id));
      // Nothing a client was told was created is lost.
      for (const id of created.get(user.id)!) expect(storedIds.has(id), `created ${id}`).toBe(true);
      // None is marked delivered that the client did not receive.
      const deliveredUnseen = stored.filter((notification) => notification.delivered && !received.get(user.id)!.has(notification.id));
      expect(deliveredUnseen, `user ${user.id}`).toEqual([]);
      // What was not delivered comes now.
      const undelivered = stored.filter((notification) => !notification.delivered).map((notification) => notification.id);
      const next = await call(server.base, 'GET', '/api/notifications/long-poll/?timeout=1', { token: user.token });
      expect(next.body.notifications.map((notification: { id: string }) => notification.id).sort()).toEqual(undelivered.sort().slice(0, 100));
    }
  }, 90_000);
});

/** Every notification of the user, following the list's pages. */
async function allNotifications(base: string, user: ChildUser): Promise<Array<{ id: string; delivered: boolean }>> {
  const all: Array<{ id: string; delivered: boolean }> = [];
  for (let path: string | undefined = '/api/notifications/?limit=100'; path; ) {
    const page = await call(base, 'GET', path, { token: user.token });
    all.push(...page.body);
    path = /<([^>]+)>; rel="next"/.exec(page.headers.get('link') ?? '')?.[1];
  }
  return all;
}

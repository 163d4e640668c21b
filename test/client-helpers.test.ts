// The SDK's helpers over domains that have landed (issue 16): feature flags asked with the server's
// ETag, and the time-entry helpers — against a real server.
import { expect, it, vi } from 'vitest';
import { createClient, UnexpectedAnswerError } from '../client/src';
import { describeApi, type TestUser } from './support/api';
import { timeEntryApi } from './support/time-entry-fixtures';

describeApi(
  'SDK helpers',
  (ctx) => {
    /** A client for `user` whose fetch notes each answer's status, with the If-None-Match it was asked with. */
    async function observedClient(user: TestUser) {
      const answers: Array<{ path: string; status: number; ifNoneMatch: string | null }> = [];
      const client = createClient({
        baseUrl: await ctx.listen(),
        token: user.token,
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          answers.push({ path: new URL(String(input)).pathname, status: response.status, ifNoneMatch: new Headers(init?.headers).get('if-none-match') });
          return response;
        },
      });
      return { client, answers };
    }

    /**
     * A client for `user` whose fetch, while holding, keeps each answer back until its release in
     * `held` is called: answers on separate connections arrive in any order.
     */
    async function heldClient(user: TestUser) {
      const held: Array<() => void> = [];
      let holding = false;
      const client = createClient({
        baseUrl: await ctx.listen(),
        token: user.token,
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          if (holding) await new Promise<void>((release) => held.push(release));
          return response;
        },
      });
      return { client, held, hold: (on: boolean) => void (holding = on) };
    }

    it('isEnabled answers from the flag check, revalidated with its ETag (304 while nothing changed)', async () => {
      const [admin, user] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser()]);
      const adminClient = createClient({ baseUrl: await ctx.listen(), token: admin.token });
      const made = await adminClient.featureFlags.create({ body: { key: 'sdk_flag', name: 'SDK flag', is_enabled: true, rollout_percentage: 100 } });
      expect(made.status).toBe(201);
      const { client, answers } = await observedClient(user);

      expect(await client.featureFlags.isEnabled('sdk_flag')).toBe(false);
      expect(await adminClient.featureFlags.grant({ params: { key: 'sdk_flag' }, body: { user_ids: [user.id] } })).toMatchObject({ status: 200 });
      expect(await client.featureFlags.isEnabled('sdk_flag')).toBe(true);
      expect(await client.featureFlags.isEnabled('sdk_flag')).toBe(true);
      const checks = answers.filter((answer) => answer.path.endsWith('/sdk_flag/check/'));
      expect(checks.map((answer) => answer.status)).toEqual([200, 200, 304]);
      expect(checks[0].ifNoneMatch).toBeNull();
      expect(checks[1].ifNoneMatch).toMatch(/^W\/"/);

      await adminClient.featureFlags.update({ params: { key: 'sdk_flag' }, body: { is_enabled: false } });
      expect(await client.featureFlags.isEnabled('sdk_flag')).toBe(false);
      expect(answers.at(-1)!.status).toBe(200);
      expect(await client.featureFlags.isEnabled('no_such_flag')).toBe(false);
    });

    it('a 304 stands for the answer whose ETag was sent, whatever answers arrive meanwhile', async () => {
      const [admin, user] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser()]);
      const baseUrl = await ctx.listen();
      const adminClient = createClient({ baseUrl, token: admin.token });
      await adminClient.featureFlags.create({ body: { key: 'sdk_raced', name: 'SDK raced', is_enabled: true, rollout_percentage: 100 } });
      await adminClient.featureFlags.grant({ params: { key: 'sdk_raced' }, body: { user_ids: [user.id] } });
      const { client, held, hold } = await heldClient(user);

      hold(true);
      const early = client.featureFlags.isEnabled('sdk_raced'); // asked while on, answered late
      await vi.waitFor(() => expect(held).toHaveLength(1));
      hold(false);
      await adminClient.featureFlags.update({ params: { key: 'sdk_raced' }, body: { is_enabled: false } });
      expect(await client.featureFlags.isEnabled('sdk_raced')).toBe(false); // kept, with its ETag
      hold(true);
      const revalidated = client.featureFlags.isEnabled('sdk_raced'); // 304: still off
      await vi.waitFor(() => expect(held).toHaveLength(2));
      held[0](); // the early answer (on) arrives now, and is kept in place of the later one
      expect(await early).toBe(true);
      held[1]();
      expect(await revalidated).toBe(false);
    });

    it('answers a 304 with the answer its ETag names after that one was dropped for newer ones', async () => {
      const [admin, user] = await Promise.all([ctx.createUser({ admin: true }), ctx.createUser()]);
      const adminClient = createClient({ baseUrl: await ctx.listen(), token: admin.token });
      const flags = Array.from({ length: 201 }, (_, i) => `sdk_many_${i}`);
      for (const key of flags) await adminClient.featureFlags.create({ body: { key, name: key, is_enabled: true } });
      const { client, held, hold } = await heldClient(user);
      for (const key of flags) await client.featureFlags.isEnabled(key); // the first falls out of the 200 kept
      hold(true);
      const revalidated = client.featureFlags.isEnabled(flags[1]); // 304
      await vi.waitFor(() => expect(held).toHaveLength(1));
      hold(false);
      await client.featureFlags.isEnabled(flags[0]); // kept again, in place of the oldest: flags[1]
      held[0]();
      expect(await revalidated).toBe(false);
    });

    it('starts and stops timers, the running one when no id is given', async () => {
      const user = await ctx.createUser();
      const project = await timeEntryApi(ctx).project(user, 'SDK project');
      const { client } = await observedClient(user);

      const started = await client.timeEntries.startTimer({ title: 'Writing the SDK', project: project.id });
      expect(started).toMatchObject({ title: 'Writing the SDK', is_active: true, end_time: null });
      const stopped = await client.timeEntries.stopTimer();
      expect(stopped).toMatchObject({ id: started.id, is_active: false });
      expect(await client.timeEntries.stopTimer()).toBeNull();

      const again = await client.timeEntries.startTimer({ title: 'Again', project: project.id });
      expect((await client.timeEntries.stopTimer(again.id))!.id).toBe(again.id);
      const refused = await client.timeEntries.stopTimer(again.id).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(UnexpectedAnswerError);
      expect(refused).toMatchObject({ status: 400 });
      const invalid = await client.timeEntries.startTimer({ title: '', project: project.id }).catch((error: unknown) => error);
      expect(invalid).toMatchObject({ status: 400, body: { title: [expect.any(String)] } });
    });

    it('answers null when the running timer is stopped elsewhere between its look and its stop', async () => {
      const user = await ctx.createUser();
      const project = await timeEntryApi(ctx).project(user, 'Raced');
      const { id } = (await ctx.http.post('/api/time_entries/').set(user.auth).send({ title: 'raced', project: project.id }).expect(201)).body;
      // Another device stops it the moment this client asks to.
      const racing: typeof fetch = async (input, init) => {
        if (String(input).endsWith(`/api/time_entries/${id}/stop/`)) await ctx.http.post(`/api/time_entries/${id}/stop/`).set(user.auth).expect(200);
        return fetch(input, init);
      };
      const client = createClient({ baseUrl: await ctx.listen(), token: user.token, fetch: racing });
      expect(await client.timeEntries.stopTimer()).toBeNull();
    });

    it('walks every page of a filtered list with allEntries', async () => {
      const user = await ctx.createUser();
      const api = timeEntryApi(ctx);
      const [kept, other] = [await api.project(user, 'Kept'), await api.project(user, 'Other')];
      const { client, answers } = await observedClient(user);
      for (let i = 0; i < 7; i++) await client.timeEntries.startTimer({ title: `kept ${i}`, project: kept.id, start_time: `2026-01-0${i + 1}T09:00:00.000Z`, end_time: `2026-01-0${i + 1}T10:00:00.000Z` });
      await client.timeEntries.startTimer({ title: 'other', project: other.id, start_time: '2026-01-01T11:00:00.000Z', end_time: '2026-01-01T12:00:00.000Z' });

      const titles: string[] = [];
      for await (const entry of client.timeEntries.allEntries({ project: String(kept.id), ordering: 'start_time', limit: '3' })) titles.push(entry.title);
      expect(titles).toEqual(['kept 0', 'kept 1', 'kept 2', 'kept 3', 'kept 4', 'kept 5', 'kept 6']);
      expect(answers.filter((answer) => answer.path === '/api/time_entries/' && answer.status === 200)).toHaveLength(3);
      await expect(client.timeEntries.allEntries({ ordering: 'nonsense' as 'title' }).next()).rejects.toMatchObject({ status: 400 });
    });
  },
  { dialects: ['sqlite'] },
);

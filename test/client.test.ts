import { expect, expectTypeOf, it } from 'vitest';
import { createClient, createPunchclockClient, UnauthorizedError } from '../client/src';
import { describeApi, STRONG_PASSWORD, uniqueName } from './support/api';

describeApi('typed client', (ctx) => {
  it('registers, logs in and works with projects through the contract-derived client', async () => {
    const baseUrl = await ctx.listen();
    const anonymous = createPunchclockClient({ baseUrl });
    const username = uniqueName('client');

    const registered = await anonymous.auth.register({ body: { username, password: STRONG_PASSWORD } });
    expect(registered.status).toBe(201);
    const login = await anonymous.auth.login({ body: { username, password: STRONG_PASSWORD } });
    if (login.status !== 200) throw new Error(`login answered ${login.status}`);

    const client = createPunchclockClient({ baseUrl, token: login.body.auth_token });
    const created = await client.projects.create({ body: { title: 'Typed', description: '' } });
    if (created.status !== 201) throw new Error(`create answered ${created.status}`);
    expect(created.body).toMatchObject({ title: 'Typed', description: '' });

    const listed = await client.projects.list();
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([created.body]);

    // Errors come back as typed answers, not exceptions…
    const missing = await client.projects.get({ params: { id: '999999' } });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Not found.' });
    // …and typed by status (checked by tsc: the contract's shared error responses once fell out of the
    // client's types, and a 404 could not even be compared with).
    if (missing.status === 404) expectTypeOf(missing.body).toEqualTypeOf<{ detail: string }>();
    // …except a 401, which every app handles alike (log out): a typed error.
    await expect(anonymous.projects.list()).rejects.toBeInstanceOf(UnauthorizedError);
    await client.auth.logout();
    const refused = await client.projects.list().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnauthorizedError);
    expect(refused).toMatchObject({ status: 401, detail: 'Invalid token.' });
  });

  it('sends a path parameter as one segment, however it is spelled: a key with a slash names no other object', async () => {
    const baseUrl = await ctx.listen();
    const admin = createClient({ baseUrl, token: (await ctx.createUser({ admin: true })).token });
    expect((await admin.featureFlags.create({ body: { key: 'sdk_kept', name: 'Kept', is_enabled: true } })).status).toBe(201);

    // `x/../sdk_kept` is no key (a 404 like any unknown one), not a way to sdk_kept's address.
    expect((await admin.featureFlags.remove({ params: { key: 'x/../sdk_kept' } })).status).toBe(404);
    expect((await admin.featureFlags.get({ params: { key: 'sdk_kept' } })).status).toBe(200);
    const misspelt = await admin.featureFlags.get({ params: { key: 'x?y' } });
    expect(misspelt).toMatchObject({ status: 404, body: { detail: 'Not found.' } });
    // …and for the helper, a key that is none is an unknown flag: off, not another route's answer.
    expect(await admin.featureFlags.isEnabled('../flags/sdk_kept')).toBe(false);
    const check = await admin.featureFlags.check({ params: { feature_key: 'a/b#c' } });
    expect(check).toMatchObject({ status: 404, body: { feature_key: 'a/b#c', is_enabled: false } });
  });

  it('sends its requests through the fetch it is given', async () => {
    const baseUrl = await ctx.listen();
    const seen: string[] = [];
    const client = createClient({
      baseUrl: `${baseUrl}/`,
      fetch: (input, init) => {
        seen.push(`${init?.method} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
    });
    expect((await client.health.check()).status).toBe(200);
    expect(seen).toEqual(['GET /health/']);
  });
});

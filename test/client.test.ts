import { expect, it } from 'vitest';
import { createPunchclockClient } from '../client/src';
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

    // Errors come back as typed answers, not exceptions.
    const missing = await client.projects.get({ params: { id: '999999' } });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Not found.' });
    const unauthenticated = await anonymous.projects.list();
    expect(unauthenticated.status).toBe(401);
  });
});

// TRUST_PROXY and the address per-address limits count by (README, "Limits"): unset, the socket's
// address is the client's and X-Forwarded-For is ignored; behind trusted proxies the forwarded
// address counts; IPv6 clients are counted by their /64.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config';
import { addressKey } from '../server/limits/address-key';
import { describeApi, STRONG_PASSWORD, uniqueName, type ApiContext } from './support/api';
import { insertCheapUsers } from './support/cheap-users';

const PER_ADDRESS = 50;

const login = (ctx: ApiContext, username: string, password: string, from: string) =>
  ctx.http.post('/auth/token/login/').set('X-Forwarded-For', from).send({ username, password });

/** PER_ADDRESS failed logins, the i-th from `from(i)`, each for a username of its own; then a user who can log in. */
async function failFrom(ctx: ApiContext, from: (i: number) => string): Promise<string> {
  const [sprayed, user] = [Array.from({ length: PER_ADDRESS }, () => uniqueName('spray')), uniqueName('good')];
  await insertCheapUsers(ctx.database.store, [...sprayed, user]);
  const statuses = await Promise.all(sprayed.map(async (username, i) => (await login(ctx, username, 'Spring2025!', from(i))).status));
  expect(statuses).toEqual(Array(PER_ADDRESS).fill(400));
  return user;
}

describe('TRUST_PROXY', () => {
  it('is a hop count or a list of addresses; unset, none is trusted; true or false is refused', () => {
    expect(loadConfig({}).trustProxy).toBeUndefined();
    expect(loadConfig({ TRUST_PROXY: ' ' }).trustProxy).toBeUndefined();
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback ,' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ TRUST_PROXY: 'FALSE' })).toThrow(/TRUST_PROXY/);
  });

  it('takes what express’s trust proxy takes (addresses, subnets, netmasks, its names) and names the variable for anything else', () => {
    const proxies = ['203.0.113.7', '::1', '2001:db8::/32', '10.0.0.0/255.0.0.0', 'linklocal', 'uniquelocal'];
    expect(loadConfig({ TRUST_PROXY: proxies.join(',') }).trustProxy).toEqual(proxies);
    // proxy-addr's own error ("invalid IP address: foo") named no variable.
    for (const wrong of ['foo', '10.0.0.0/33', '10.0.0.1/8/8', 'loopback, 10.0.0.300']) {
      expect(() => loadConfig({ TRUST_PROXY: wrong }), wrong).toThrow(/^TRUST_PROXY must be/);
    }
  });
});

describe('addressKey', () => {
  it('keeps IPv4 (also IPv4-mapped) and counts IPv6 by its /64', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2::a')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:3::a')).toBe('2001:db8:1:3::/64');
    expect(addressKey('unknown')).toBe('unknown');
  });

  it('leaves out the port a proxy may write with the address (each connection has a port of its own)', () => {
    expect(addressKey('203.0.113.7:51234')).toBe('203.0.113.7');
    expect(addressKey('[2001:db8:1:2::a]:443')).toBe('2001:db8:1:2::/64');
    expect(addressKey('[::ffff:203.0.113.7]')).toBe('203.0.113.7');
  });
});

describeApi('client address without TRUST_PROXY', (ctx) => {
  it('ignores X-Forwarded-For: failures sent under many forwarded addresses all count against the socket’s', async () => {
    const user = await failFrom(ctx, (i) => `198.51.100.${i + 1}`);
    expect((await login(ctx, user, STRONG_PASSWORD, '192.0.2.99')).status).toBe(429);
  });
});

describeApi(
  'client address behind one trusted proxy (TRUST_PROXY=1)',
  (ctx) => {
    it('counts the forwarded address: one client’s failures do not lock out the others behind the same proxy', async () => {
      const user = await failFrom(ctx, () => '203.0.113.7');
      expect((await login(ctx, user, STRONG_PASSWORD, '203.0.113.7')).status).toBe(429);
      // The proxy's own address (the socket's) is not what counts: another client gets in.
      expect((await login(ctx, user, STRONG_PASSWORD, '203.0.113.8')).status).toBe(200);
      // A client cannot dodge its count by forwarding a made-up address of its own: one hop is trusted, the rightmost.
      expect((await login(ctx, user, STRONG_PASSWORD, '192.0.2.1, 203.0.113.7')).status).toBe(429);
    });
  },
  { trustProxy: 1 },
);

describeApi(
  'client address behind trusted proxies by address (TRUST_PROXY=loopback)',
  (ctx) => {
    it('counts an IPv6 client by its /64: fresh addresses from one network share a count, another network does not', async () => {
      const user = await failFrom(ctx, (i) => `2001:db8:1:2::${(i + 1).toString(16)}`);
      expect((await login(ctx, user, STRONG_PASSWORD, '2001:db8:1:2:ffff:ffff:ffff:fffe')).status).toBe(429);
      expect((await login(ctx, user, STRONG_PASSWORD, '2001:db8:1:3::1')).status).toBe(200);
    });
  },
  { trustProxy: ['loopback'] },
);

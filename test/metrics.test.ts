// GET /metrics (issue 17): Prometheus text from prom-client, never open to the world — behind
// METRICS_TOKEN on the API's port, or on a port of its own (METRICS_PORT).
import { expect, it } from 'vitest';
import { loadConfig } from '../server/config';
import { describeApi, type ApiContext } from './support/api';
import { startServer } from './support/child-server';
import { until } from './support/waiting';

const TOKEN = 'a metrics token of some length';

/** The value of one series in Prometheus text (`name{labels} value`), or undefined. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const scrape = async (ctx: ApiContext): Promise<string> => {
  const res = await ctx.http.get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
};

describeApi(
  'metrics behind METRICS_TOKEN',
  (ctx) => {
    it('refuses a scrape without the token, or with another', async () => {
      for (const authorization of [undefined, 'Bearer nope', `Token ${TOKEN}`, `Bearer ${TOKEN}x`]) {
        const request = ctx.http.get('/metrics');
        const res = await (authorization ? request.set('Authorization', authorization) : request);
        expect(res.status, authorization).toBe(401);
        expect(res.body).toEqual({ detail: expect.any(String) });
      }
    });

    it('counts requests by route template and status, with their latency, and never by URL', async () => {
      const user = await ctx.createUser();
      const project = (await ctx.http.post('/api/projects/').set(user.auth).send({ title: 'Measured' }).expect(201)).body;
      const before = valueOf(await scrape(ctx), 'punchclock_http_requests_total{method="GET",route="/api/projects/:id/",status="200"}') ?? 0;
      await ctx.http.get(`/api/projects/${project.id}/`).set(user.auth).expect(200);
      await ctx.http.get('/api/projects/999999/').set(user.auth).expect(404);
      const text = await scrape(ctx);
      expect(valueOf(text, 'punchclock_http_requests_total{method="GET",route="/api/projects/:id/",status="200"}')).toBe(before + 1);
      expect(valueOf(text, 'punchclock_http_requests_total{method="GET",route="/api/projects/:id/",status="404"}')).toBeGreaterThanOrEqual(1);
      expect(valueOf(text, 'punchclock_http_request_duration_seconds_count{method="GET",route="/api/projects/:id/",status="200"}')).toBe(before + 1);
      expect(text).not.toContain(`/api/projects/${project.id}/`);
      // A hot read, served before express (http/lean-contract-get.ts), by its template too.
      const check = 'punchclock_http_requests_total{method="GET",route="/api/feature-flags/user-features/:feature_key/check/",status="404"}';
      await ctx.http.get('/api/feature-flags/user-features/no-such-flag/check/').set(user.auth).expect(404);
      const afterCheck = await scrape(ctx);
      expect(valueOf(afterCheck, check)).toBe((valueOf(text, check) ?? 0) + 1);
      expect(afterCheck).not.toContain('no-such-flag');
      // prom-client's process metrics, event-loop lag among them.
      expect(text).toMatch(/^punchclock_nodejs_eventloop_lag_seconds \d/m);
      expect(text).toMatch(/^punchclock_process_resident_memory_bytes \d/m);
    });

    it('counts a stream that express serves (another spelling of its path) by its template too, not as "unmatched"', async () => {
      const user = await ctx.createUser();
      const base = await ctx.listen();
      const series = 'punchclock_http_requests_total{method="GET",route="/api/notifications/sse/",status="200"}';
      const before = valueOf(await scrape(ctx), series) ?? 0;
      const stream = new AbortController();
      // Without its trailing slash: not the plain request served before express (http/lean-route.ts).
      const res = await fetch(`${base}/api/notifications/sse`, { headers: { Authorization: `Token ${user.token}` }, signal: stream.signal });
      expect(res.status).toBe(200);
      stream.abort();
      await until(async () => valueOf(await scrape(ctx), series) === before + 1, 'the stream counted under its template');
    });

    it('follows notifications: created, delivered by transport with their latency, acknowledged; waiting long-polls; the bus', async () => {
      const user = await ctx.createUser();
      const read = async (series: string) => valueOf(await scrape(ctx), series) ?? 0;
      const [created, longPolled, acknowledged, latencies] = await Promise.all([
        read('punchclock_notifications_created_total'),
        read('punchclock_notifications_delivered_total{transport="long-poll"}'),
        read('punchclock_notifications_acknowledged_total'),
        read('punchclock_notification_delivery_seconds_count{transport="long-poll"}'),
      ]);

      const waiting = ctx.http.get('/api/notifications/long-poll/?timeout=10').set(user.auth).then((res) => res);
      await until(async () => (await read('punchclock_waiting_long_polls')) === 1, 'one waiting long-poll');
      await ctx.http.post('/api/notifications/test/').set(user.auth).send({ type: 'INFO', message: 'measured' }).expect(201);
      expect((await waiting).body.notifications).toHaveLength(1);
      await until(async () => (await read('punchclock_notifications_delivered_total{transport="long-poll"}')) === longPolled + 1, 'the delivery counted');
      expect(await read('punchclock_notification_delivery_seconds_count{transport="long-poll"}')).toBe(latencies + 1);
      expect(await read('punchclock_waiting_long_polls')).toBe(0);

      const second = (await ctx.http.post('/api/notifications/test/').set(user.auth).send({ type: 'INFO', message: 'by hand' }).expect(201)).body;
      await ctx.http.post(`/api/notifications/${second.id}/acknowledge/`).set(user.auth).expect(200);
      expect(await read('punchclock_notifications_created_total')).toBe(created + 2);
      expect(await read('punchclock_notifications_acknowledged_total')).toBe(acknowledged + 1);
      expect(await read('punchclock_bus_healthy')).toBe(1);
    });

    it('reports the database pool on Postgres', async () => {
      const text = await scrape(ctx);
      if (ctx.database.store.dialect === 'postgres') {
        for (const state of ['in_use', 'idle', 'waiting']) expect(valueOf(text, `punchclock_db_pool_connections{state="${state}"}`)).toBeGreaterThanOrEqual(0);
      } else {
        expect(text).not.toContain('punchclock_db_pool_connections');
      }
    });
  },
  { metricsToken: TOKEN },
);

describeApi('metrics without METRICS_TOKEN', (ctx) => {
  it('serves no /metrics on the API port, and keeps no process collectors running', async () => {
    await ctx.http.get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(404);
    expect(await ctx.services.metrics.registry.metrics()).not.toContain('punchclock_nodejs_eventloop_lag_seconds');
  });
});

it('takes METRICS_PORT and a METRICS_TOKEN long enough to be secret', () => {
  expect(loadConfig({ METRICS_PORT: '9464', METRICS_TOKEN: TOKEN })).toMatchObject({ metricsPort: 9464, metricsToken: TOKEN });
  expect(loadConfig({})).toMatchObject({ metricsPort: undefined, metricsToken: undefined });
  expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
  expect(loadConfig({ METRICS_PORT: '' })).toMatchObject({ metricsPort: undefined });
  // The error names the variable it is about (PORT is another one).
  expect(() => loadConfig({ METRICS_PORT: 'x' })).toThrow(/^METRICS_PORT must be 0\.\.65535, got "x"/);
});

it('serves /metrics on METRICS_PORT, and not on the API port', async () => {
  const server = await startServer({ DATABASE_URL: ':memory:', METRICS_PORT: '0' });
  try {
    const url = server.lines.find((line) => line.msg === 'punchclock listening')!.metrics as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const metrics = await fetch(url);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('punchclock_http_requests_total');
    expect((await fetch(`${server.base}/metrics`)).status).toBe(404);
  } finally {
    await server.kill();
  }
}, 60_000);

it('binds METRICS_PORT, as the API, to HOST only', async () => {
  const server = await startServer({ DATABASE_URL: ':memory:', METRICS_PORT: '0', HOST: '127.0.0.2' });
  try {
    const url = new URL(server.lines.find((line) => line.msg === 'punchclock listening')!.metrics as string);
    expect([url.hostname, new URL(server.base).hostname]).toEqual(['127.0.0.2', '127.0.0.2']);
    expect((await fetch(url)).status).toBe(200);
    url.hostname = '127.0.0.1';
    await expect(fetch(url)).rejects.toThrow();
    await expect(fetch(server.base.replace('127.0.0.2', '127.0.0.1') + '/health/live')).rejects.toThrow();
  } finally {
    await server.kill();
  }
}, 60_000);

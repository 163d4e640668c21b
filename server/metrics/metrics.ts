import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InstanceBus } from '../realtime/bus';

/** What the notification service reports as it works (Metrics implements it; tests may leave it out). */
export interface NotificationEvents {
  created(count: number): void;
  acknowledged(): void;
}

export const NO_NOTIFICATION_EVENTS: NotificationEvents = { created: () => {}, acknowledged: () => {} };

/** What the metrics read when scraped: the hub's connections, the database pool. */
export interface MetricSources {
  /** Open long-polls and streams together (the hub counts both against the per-user cap). */
  connections(): number;
  bus: InstanceBus;
  /** Postgres's pool (SQLite has none). */
  pool?: () => { total: number; idle: number; waiting: number };
  /**
   * prom-client's process metrics (CPU, memory, event-loop lag, GC): only when the metrics are
   * served, for each collection keeps observers running (an event-loop monitor, a GC observer).
   */
  processMetrics: boolean;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];

/**
 * The process's Prometheus metrics (prom-client), in a registry of its own: HTTP requests by route
 * template (never the raw URL, whose ids would make a series per object) and status, with their
 * latency; waiting long-polls and open streams; notifications created, delivered (by transport) and
 * acknowledged, and the time from creation to delivery; the bus's health and reconnects; the
 * database pool; and prom-client's process metrics (CPU, memory, event-loop lag, GC).
 */
export class Metrics implements NotificationEvents {
  readonly registry = new Registry();
  private readonly httpRequests = new Counter({ name: 'punchclock_http_requests_total', help: 'HTTP requests answered, by route template and status.', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  private readonly httpDuration = new Histogram({ name: 'punchclock_http_request_duration_seconds', help: 'Time to answer an HTTP request, by route template and status.', labelNames: ['method', 'route', 'status'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly notificationsCreated = new Counter({ name: 'punchclock_notifications_created_total', help: 'Notifications created.', registers: [this.registry] });
  private readonly notificationsDelivered = new Counter({ name: 'punchclock_notifications_delivered_total', help: 'Notifications marked delivered when they reached a client, by transport.', labelNames: ['transport'], registers: [this.registry] });
  private readonly notificationsAcknowledged = new Counter({ name: 'punchclock_notifications_acknowledged_total', help: 'Notifications acknowledged by hand (the fallback).', registers: [this.registry] });
  private readonly deliveryLatency = new Histogram({ name: 'punchclock_notification_delivery_seconds', help: 'From a notification’s creation to its delivery to a client.', labelNames: ['transport'], buckets: DELIVERY_BUCKETS, registers: [this.registry] });
  private readonly busReconnects = new Counter({ name: 'punchclock_bus_reconnects_total', help: 'Times the instance bus (Redis) came back after being down.', registers: [this.registry] });
  private openStreams = 0;

  constructor(sources: MetricSources) {
    if (sources.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'punchclock_' });
    const streams = () => this.openStreams;
    new Gauge({ name: 'punchclock_open_streams', help: 'Open SSE notification streams.', registers: [this.registry], collect() { this.set(streams()); } });
    new Gauge({ name: 'punchclock_waiting_long_polls', help: 'Long-polls waiting for notifications.', registers: [this.registry], collect() { this.set(Math.max(0, sources.connections() - streams())); } });
    new Gauge({ name: 'punchclock_bus_healthy', help: '1 while the instance bus (Redis pub/sub, or in-memory) delivers messages.', registers: [this.registry], collect() { this.set(sources.bus.healthy ? 1 : 0); } });
    sources.bus.onHealthChange((healthy) => healthy && this.busReconnects.inc());
    const pool = sources.pool;
    if (pool) {
      new Gauge({
        name: 'punchclock_db_pool_connections',
        help: 'Database pool connections: in use, idle, and requests waiting for one.',
        labelNames: ['state'],
        registers: [this.registry],
        collect() {
          const { total, idle, waiting } = pool();
          this.set({ state: 'in_use' }, total - idle);
          this.set({ state: 'idle' }, idle);
          this.set({ state: 'waiting' }, waiting);
        },
      });
    }
  }

  /** The series of each method, route and status, bound once: labelling on every request costs. */
  private readonly requestSeries = new Map<string, { count: ReturnType<Counter['labels']>; time: ReturnType<Histogram['labels']> }>();

  request(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      const labels = { method, route, status: String(status) };
      series = { count: this.httpRequests.labels(labels), time: this.httpDuration.labels(labels) };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.time.observe(seconds);
  }

  created(count: number): void {
    this.notificationsCreated.inc(count);
  }

  /** The series of each transport, bound once as the requests' are: a broadcast marks thousands at a time. */
  private readonly deliverySeries = {
    'long-poll': this.deliverySeriesOf('long-poll'),
    sse: this.deliverySeriesOf('sse'),
  };

  private deliverySeriesOf(transport: 'long-poll' | 'sse') {
    return { count: this.notificationsDelivered.labels({ transport }), latency: this.deliveryLatency.labels({ transport }) };
  }

  delivered(transport: 'long-poll' | 'sse', createdAt: Date[]): void {
    const series = this.deliverySeries[transport];
    series.count.inc(createdAt.length);
    const now = Date.now();
    for (const at of createdAt) series.latency.observe(Math.max(0, now - at.getTime()) / 1000);
  }

  acknowledged(): void {
    this.notificationsAcknowledged.inc();
  }

  streamOpened(): () => void {
    this.openStreams++;
    let closed = false;
    return () => {
      if (!closed) this.openStreams--;
      closed = true;
    };
  }
}

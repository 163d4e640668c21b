import type { Server } from 'node:http';

/**
 * Idle keep-alive connections are held longer than load balancers hold theirs (AWS ALB 60 s by
 * default, GCP 600 s is set on its side): with Node's 5 s, the server would close connections that
 * the balancer still counts as open and sends the next request on, which then fails (502).
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Above the keep-alive timeout, as Node requires for it to take effect on a connection's next request. */
export const HEADERS_TIMEOUT_MS = 66_000;

export function holdIdleConnectionsForLoadBalancers(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
}

import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AppRoute } from '@ts-rest/core';
import type { Request, RequestHandler, Response } from 'express';
import type { CompletionObserver } from '../http/request-logging';
import type { Metrics } from './metrics';

/**
 * Counts and times every answer by its route template (`/api/projects/:id/`, as the contract or
 * express declares it), never by its URL: ids in labels would make a series per object. A
 * completion observer (see useRequestLogging).
 */
export const countRequest =
  (metrics: Metrics): CompletionObserver =>
  (req, res, ms) =>
    metrics.request(req.method, routeTemplateOf(req), res.statusCode, ms / 1000);

const routeTemplateOf = (req: Request): string =>
  (req as Request & { tsRestRoute?: AppRoute }).tsRestRoute?.path ?? (req.route as { path?: string } | undefined)?.path ?? 'unmatched';

/** GET /metrics on the API's own port, for a scraper that sends `Authorization: Bearer <METRICS_TOKEN>`. */
export function metricsBehindToken(metrics: Metrics, token: string): RequestHandler {
  const expected = digest(token);
  return (req, res, next) => {
    if (req.path !== '/metrics' || req.method !== 'GET') return next();
    const given = /^Bearer (.+)$/i.exec(req.get('authorization') ?? '')?.[1];
    // Compared as digests, in constant time: the token's length and bytes do not leak by timing.
    if (!given || !timingSafeEqual(digest(given), expected)) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'The metrics need their bearer token.' });
      return;
    }
    void answerMetrics(metrics, res);
  };
}

/** A server of its own for GET /metrics (METRICS_PORT): a port the load balancer does not expose. */
export function startMetricsServer(metrics: Metrics, port: number, host: string): http.Server {
  return http
    .createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') return void answerMetrics(metrics, res);
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"detail":"Not found."}');
    })
    .listen(port, host);
}

async function answerMetrics(metrics: Metrics, res: Response | http.ServerResponse): Promise<void> {
  const text = await metrics.registry.metrics();
  res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store' }).end(text);
}

const digest = (value: string) => createHash('sha256').update(value).digest();

import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { contract } from '../../contract';
import type { HttpAnswer } from './error-handler';
import { clientGone } from './response-lifecycle';
import type { CompletionObserver } from './request-logging';

/** How long a request may take before it is answered 503 (long-polls and streams excepted). */
export const REQUEST_DEADLINE_MS = 30_000;

/** The routes that wait by design, and have no deadline: the long-poll and the stream. */
export const ROUTES_THAT_WAIT: string[] = [contract.notifications.longPoll.path, contract.notifications.sse.path];

const DEADLINE_PASSED = Symbol('deadline passed');

/** How a request on the deadline is answered when it passes: express's way, or a lean route's. */
export interface DeadlineAnswerer {
  log(): Logger;
  write(answer: HttpAnswer): void;
}

/**
 * A deadline for every request but the ones that wait by design (long-polls, streams, given in
 * `exempt`): one still unanswered after `ms` gets `503 {"detail": …}` with `Retry-After`, instead of
 * holding its client and its load balancer until one of them gives up. The work goes on behind it
 * (a query cannot be taken back half-way: a write may still complete, which is what Idempotency-Key
 * is for); its late answer is dropped (see errorHandler, and lean-route.ts for the routes served
 * before express).
 *
 * One sweep over the requests in flight (every tenth of the deadline, at most every second), not a
 * timer per request: `start` (express's middleware) or `watch` (a lean route) notes a request,
 * `settle` (a completion observer) forgets it. A sweep answers what would pass its deadline before
 * the next one, so the answer comes within the deadline (a proxy that gives up at exactly 30 s, as
 * Heroku's router does, gets ours), at most one sweep early.
 */
export class RequestDeadline {
  private readonly exempt: Set<string>;
  /** Requests in flight, with the moment their deadline passes. */
  private readonly inFlight = new Map<ServerResponse, { due: number; answerer: DeadlineAnswerer }>();
  private sweeping: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;

  constructor(
    private readonly ms: number,
    exempt: string[],
  ) {
    this.exempt = new Set(exempt.map(canonical));
    this.sweepEveryMs = Math.min(1000, Math.ceil(ms / 10));
  }

  readonly start: RequestHandler = (req, res, next) => {
    if (!this.waitsByDesign(req.path)) {
      this.watch(res, {
        log: () => req.log,
        write: ({ status, headers, body }) => void res.status(status).set(headers ?? {}).json(body),
      });
    }
    next();
  };

  /** Whether requests of this path (in any spelling express matches) wait by design: no deadline. */
  waitsByDesign(path: string): boolean {
    return this.exempt.has(canonical(path));
  }

  /** Puts a request on the deadline (one of a route that does not wait by design). */
  watch(res: ServerResponse, answerer: DeadlineAnswerer): void {
    // Its client left already (while the token was looked up): nothing to answer, and its access
    // line, which would take it off again, is written (request-logging.ts: the same test).
    if (clientGone(res)) return;
    this.inFlight.set(res, { due: Date.now() + this.ms, answerer });
    this.sweeping ??= setInterval(() => this.sweep(), this.sweepEveryMs).unref();
  }

  readonly settle: CompletionObserver = (_req, res) => {
    this.inFlight.delete(res);
  };

  private sweep(): void {
    const nextSweep = Date.now() + this.sweepEveryMs;
    for (const [res, { due, answerer }] of this.inFlight) {
      if (due > nextSweep) continue;
      this.inFlight.delete(res);
      if (!res.headersSent) this.answer(res, answerer);
    }
    if (this.inFlight.size === 0) {
      clearInterval(this.sweeping);
      this.sweeping = undefined;
    }
  }

  private answer(res: ServerResponse, answerer: DeadlineAnswerer): void {
    (res as ServerResponse & { [DEADLINE_PASSED]?: true })[DEADLINE_PASSED] = true;
    answerer.log().warn({ deadlineMs: this.ms }, 'request answered 503: past its deadline');
    answerer.write({ status: 503, headers: { 'Retry-After': '5' }, body: { detail: `The request could not be answered within ${this.ms / 1000} s; try again.` } });
  }
}

/** Routes match in any letter case, without their trailing slash and with percent-escapes decoded: so does the exemption. */
const canonical = (path: string) => decoded(path).toLowerCase().replace(/\/?$/, '/');

/** A path that does not percent-decode names no route (a 404 at once): kept as it is. */
function decoded(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Whether the deadline answered this request already (anything the handler sends later is dropped). */
export const answeredByDeadline = (res: ServerResponse): boolean => (res as ServerResponse & { [DEADLINE_PASSED]?: true })[DEADLINE_PASSED] === true;

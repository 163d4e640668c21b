import type { Request, RequestHandler, Response } from 'express';
import { contract } from '../../contract';
import type { CompletionObserver } from './request-logging';

/** How long a request may take before it is answered 503 (long-polls and streams excepted). */
export const REQUEST_DEADLINE_MS = 30_000;

/** The routes that wait by design, and have no deadline: the long-poll and the stream. */
export const ROUTES_THAT_WAIT: string[] = [contract.notifications.longPoll.path, contract.notifications.sse.path];

const DEADLINE_PASSED = Symbol('deadline passed');

/**
 * A deadline for every request but the ones that wait by design (long-polls, streams, given in
 * `exempt`): one still unanswered after `ms` gets `503 {"detail": …}` with `Retry-After`, instead of
 * holding its client and its load balancer until one of them gives up. The work goes on behind it
 * (a query cannot be taken back half-way: a write may still complete, which is what Idempotency-Key
 * is for); its late answer is dropped (see errorHandler).
 *
 * One sweep over the requests in flight (every tenth of the deadline, at most every second), not a
 * timer per request: `start` notes a request, `settle` (a completion observer) forgets it.
 */
export class RequestDeadline {
  private readonly waitsByDesign: Set<string>;
  /** Requests in flight, with the moment their deadline passes. */
  private readonly inFlight = new Map<Response, { req: Request; due: number }>();
  private sweeping: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    exempt: string[],
  ) {
    this.waitsByDesign = new Set(exempt.map(canonical));
  }

  readonly start: RequestHandler = (req, res, next) => {
    if (!this.waitsByDesign.has(canonical(req.path))) {
      this.inFlight.set(res, { req, due: Date.now() + this.ms });
      this.sweeping ??= setInterval(() => this.sweep(), Math.min(1000, Math.ceil(this.ms / 10))).unref();
    }
    next();
  };

  readonly settle: CompletionObserver = (_req, res) => {
    this.inFlight.delete(res);
  };

  private sweep(): void {
    const now = Date.now();
    for (const [res, { req, due }] of this.inFlight) {
      if (due > now) continue;
      this.inFlight.delete(res);
      if (!res.headersSent) this.answer(req, res);
    }
    if (this.inFlight.size === 0) {
      clearInterval(this.sweeping);
      this.sweeping = undefined;
    }
  }

  private answer(req: Request, res: Response): void {
    (res as Response & { [DEADLINE_PASSED]?: true })[DEADLINE_PASSED] = true;
    req.log.warn({ deadlineMs: this.ms }, 'request answered 503: past its deadline');
    res.status(503).set('Retry-After', '5').json({ detail: `The request took longer than ${this.ms / 1000} s; try again.` });
  }
}

/** Routes match in any letter case and without their trailing slash: so does the exemption. */
const canonical = (path: string) => path.toLowerCase().replace(/\/?$/, '/');

/** Whether the deadline answered this request already (anything the handler sends later is dropped). */
export const answeredByDeadline = (res: Response): boolean => (res as Response & { [DEADLINE_PASSED]?: true })[DEADLINE_PASSED] === true;

import type { RequestHandler, Response } from 'express';
import { contract } from '../../contract';

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
 */
export function requestDeadline(ms: number, exempt: string[]): RequestHandler {
  // Routes match in any letter case and without their trailing slash: so does the exemption.
  const canonical = (path: string) => path.toLowerCase().replace(/\/?$/, '/');
  const waitsByDesign = new Set(exempt.map(canonical));
  return (req, res, next) => {
    if (waitsByDesign.has(canonical(req.path))) return next();
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      (res as Response & { [DEADLINE_PASSED]?: true })[DEADLINE_PASSED] = true;
      req.log.warn({ deadlineMs: ms }, 'request answered 503: past its deadline');
      res.status(503).set('Retry-After', '5').json({ detail: `The request took longer than ${ms / 1000} s; try again.` });
    }, ms);
    const settle = () => clearTimeout(timer);
    res.once('finish', settle);
    res.once('close', settle);
    next();
  };
}

/** Whether the deadline answered this request already (anything the handler sends later is dropped). */
export const answeredByDeadline = (res: Response): boolean => (res as Response & { [DEADLINE_PASSED]?: true })[DEADLINE_PASSED] === true;

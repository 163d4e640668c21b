import type { Response } from 'express';

// A client may leave at any moment, including before a handler got to listen: 'close' has then been
// emitted already, and `res.destroyed` is what tells.

const lostBeforeFinished = (res: Response) => res.destroyed && !res.writableFinished;

/** Aborts when the client goes away before the response has been completely written. */
export function disconnectSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  if (lostBeforeFinished(res)) controller.abort();
  else res.once('close', () => !res.writableFinished && controller.abort());
  return controller.signal;
}

/**
 * Calls `written` once the response has been handed to the socket ('finish'), or `lost` if the
 * client went away before that.
 */
export function whenResponseSettles(res: Response, outcome: { written: () => void; lost: () => void }): void {
  if (lostBeforeFinished(res)) {
    outcome.lost();
    return;
  }
  res.once('finish', outcome.written);
  res.once('close', () => !res.writableFinished && outcome.lost());
}

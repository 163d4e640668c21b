import type { Response } from 'express';

/** Aborts when the client goes away before the response has been completely written. */
export function disconnectSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  const abortUnlessFinished = () => {
    if (!res.writableFinished) controller.abort();
  };
  // The client may have left while the request was being authenticated: 'close' came already.
  if (res.destroyed) abortUnlessFinished();
  else res.once('close', abortUnlessFinished);
  return controller.signal;
}

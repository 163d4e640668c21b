import type { Response } from 'express';

/** Aborts when the client goes away before the response has been completely written. */
export function disconnectSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

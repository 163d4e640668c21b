import type { ServerResponse } from 'node:http';

// A client may leave at any moment, including before a handler got to listen: 'close' has then been
// emitted already, and `res.destroyed` is what tells.
//
// Listeners are added with `on`, not `once`: a response emits 'close' and 'finish' once each, and
// `once` wraps every listener in a bound function and a state object of its own, which a waiting
// long-poll holds for as long as it waits (about 150 bytes each, and a bind on every request).

const lostBeforeFinished = (res: ServerResponse) => res.destroyed && !res.writableFinished;

/**
 * Calls `listener` once if the client goes away before the response has been completely written
 * (at once if it has already); returns a function that stops watching.
 */
export function whenClientGone(res: ServerResponse, listener: () => void): () => void {
  if (lostBeforeFinished(res)) {
    listener();
    return () => {};
  }
  const onClose = () => {
    if (!res.writableFinished) listener();
  };
  res.on('close', onClose);
  return () => res.off('close', onClose);
}

/**
 * Calls `written` once the response has been handed to the socket ('finish'), or `lost` if the
 * client went away before that. Node emits 'finish' also for an answer that was still being
 * written when the client reset the connection (a large answer to a client that reads slowly): its
 * socket is destroyed by then, and what had not reached it is lost, so that counts as lost too.
 */
export function whenResponseSettles(res: ServerResponse, outcome: { written: () => void; lost: () => void }): void {
  const socket = res.socket;
  if (!lostBeforeFinished(res)) res.on('finish', () => (socket?.destroyed ? outcome.lost() : outcome.written()));
  whenClientGone(res, outcome.lost);
}

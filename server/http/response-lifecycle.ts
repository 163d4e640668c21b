import type { ServerResponse } from 'node:http';

// A client may leave at any moment, including before a handler got to listen: 'close' has then been
// emitted already, and `res.destroyed` is what tells. For a moment before that the socket alone
// knows: it is destroyed at once, and its 'close' (which closes the response) comes a turn of the
// event loop later. A response ended in that moment is dropped without a word — no 'finish', though
// `res.writableFinished` then reads true — so neither may stand for "written".
//
// Listeners are added with `on`, not `once`: a response emits 'close' and 'finish' once each, and
// `once` wraps every listener in a bound function and a state object of its own, which a waiting
// long-poll holds for as long as it waits (about 150 bytes each, and a bind on every request).

const clientGone = (res: ServerResponse) => res.destroyed || res.socket?.destroyed === true;
const lostBeforeFinished = (res: ServerResponse) => clientGone(res) && !res.writableFinished;

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
 * Calls `written` once the response has been handed to the socket ('finish'), or else `lost`, once:
 * when the client goes away before that (at once if it has already), or when the response closes
 * without a 'finish' (it was ended onto a socket already gone). Node emits 'finish' also for an
 * answer that was still being written when the client reset the connection (a large answer to a
 * client that reads slowly): its socket is destroyed by then, and what had not reached it is lost,
 * so that counts as lost too.
 */
export function whenResponseSettles(res: ServerResponse, outcome: { written: () => void; lost: () => void }): void {
  if (clientGone(res)) return outcome.lost();
  const socket = res.socket;
  let settled = false;
  const settle = (how: () => void) => {
    if (settled) return;
    settled = true;
    how();
  };
  res.on('finish', () => settle(socket?.destroyed ? outcome.lost : outcome.written));
  res.on('close', () => settle(outcome.lost));
}

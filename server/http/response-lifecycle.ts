import type { ServerResponse } from 'node:http';

// A client may leave at any moment, including before a handler got to listen: 'close' has then been
// emitted already, and `res.destroyed` is what tells. For a moment before that the socket alone
// knows: it is destroyed at once, and its 'close' (which closes the response) comes a turn of the
// event loop later. A response ended in that moment is dropped without a word — no 'finish', though
// `res.writableFinished` then reads true — so neither may stand for "written".
//
// A client may also pipeline: send its next request before the answer to the one before has come.
// Node serves both, but hands the later response the socket only once the earlier one is written:
// until then the response has no socket, and when the client leaves meanwhile node closes only the
// response that holds the socket — the queued one hears neither 'finish' nor 'close', for good. Its
// request does hear 'close', and its request's socket is the connection (connectionOf).
//
// Listeners are added with `on`, not `once`: a response emits 'close' and 'finish' once each, and
// `once` wraps every listener in a bound function and a state object of its own, which a waiting
// long-poll holds for as long as it waits (about 150 bytes each, and a bind on every request).

/** The connection a response goes out on: its socket, or its request's while it waits for that (pipelined). */
export const connectionOf = (res: ServerResponse) => res.socket ?? res.req.socket;
/** Whether the client has left: the response closed, or its connection (whose 'close' reaches the response a moment later). */
export const clientGone = (res: ServerResponse) => res.destroyed || connectionOf(res)?.destroyed === true;

/**
 * Calls `listener` once when the response closes, or its connection does before it (at once if
 * either has already); returns a function that stops watching.
 */
export function whenClosed(res: ServerResponse, listener: () => void): () => void {
  if (clientGone(res)) {
    listener();
    return () => {};
  }
  const onClose = () => {
    stop();
    listener();
  };
  // Queued (pipelined): only its request hears the connection close, until it holds the socket.
  // (A request also closes once its body has been read: only a closed connection counts.)
  // (Nothing more is held for the usual response, which a waiting long-poll is.)
  const queued = res.socket ? undefined : { req: res.req, onClose: () => connectionOf(res)?.destroyed && onClose() };
  const stop = () => {
    res.off('close', onClose);
    queued?.req.off('close', queued.onClose);
  };
  res.on('close', onClose);
  queued?.req.on('close', queued.onClose);
  return stop;
}

/**
 * whenClosed for a listener that watches to the end, as the access log does for every request: for a
 * response that holds its socket, nothing more than its 'close' listener.
 */
export function onClosed(res: ServerResponse, listener: () => void): void {
  if (clientGone(res)) listener();
  else if (res.socket) res.on('close', listener);
  else whenClosed(res, listener);
}

/**
 * Calls `listener` once if the client goes away before the response has been completely written
 * (at once if it has already); returns a function that stops watching.
 */
export function whenClientGone(res: ServerResponse, listener: () => void): () => void {
  return whenClosed(res, () => {
    if (!res.writableFinished) listener();
  });
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
  // Kept: node lets go of the socket before 'finish' reaches this listener.
  const socket = connectionOf(res);
  let settled = false;
  const settle = (how: () => void) => {
    if (settled) return;
    settled = true;
    how();
  };
  res.on('finish', () => settle(socket?.destroyed ? outcome.lost : outcome.written));
  whenClosed(res, () => settle(outcome.lost));
}

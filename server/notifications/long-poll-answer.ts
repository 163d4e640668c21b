import type { ServerResponse } from 'node:http';
import type { SessionsService } from '../auth/sessions.service';
import type { Metrics } from '../metrics/metrics';
import { whenClientGone, whenResponseSettles } from '../http/response-lifecycle';
import type { DeliveryClaims } from './delivery-claims';
import type { LongPoll, LongPollResult } from './long-poll';
import { serializeNotification } from './notification.serializer';

export interface LongPollAnswerDeps {
  longPoll: LongPoll;
  claims: DeliveryClaims;
  metrics: Metrics;
  sessions: SessionsService;
}

/**
 * The long-poll's answer, the same whichever path serves the request (the contract's express route,
 * or its lean route before express): waits for the user's notifications (see LongPoll), then returns
 * the body. What it carries is marked delivered once `res` has written it to the socket, and offered
 * again if the client went away first. `markingFailed` hears of a failure to mark it delivered. A
 * poll whose token is revoked while it waits (`authorization`: the header it came with) fails with
 * the refusal, a 401.
 *
 * A continuation of the wait, not an async function of its own: a suspended async function keeps a
 * copy of its frame, and each waiting long-poll held four of them (heap snapshot of 10,000).
 */
export function answerLongPoll(
  deps: LongPollAnswerDeps,
  { userId, authorization }: { userId: number; authorization: string | undefined },
  timeoutMs: number,
  res: ServerResponse,
  markingFailed: (error: unknown) => void,
) {
  return deps.longPoll
    .wait(userId, timeoutMs, (gone) => whenClientGone(res, gone), () => deps.sessions.stillSignedIn(authorization))
    .then((result) => settleDelivery(deps, userId, result, res, markingFailed));
}

/** Marks what `result` carries delivered once `res` has written it (offered again if lost); returns the body. */
function settleDelivery(
  { claims, metrics }: LongPollAnswerDeps,
  userId: number,
  result: LongPollResult,
  res: ServerResponse,
  markingFailed: (error: unknown) => void,
) {
  const ids = result.notifications.map((row) => row.id);
  if (ids.length > 0) {
    // Delivered means the answer reached the socket: a client gone before that gets them again.
    whenResponseSettles(res, {
      written: () => {
        // An error answer written in its place (the body failed to serialize) carried nothing.
        if (res.statusCode !== 200) return claims.abandon(userId, ids);
        claims.confirm(userId, ids).then(
          () => metrics.delivered('long-poll', result.notifications.map((row) => row.createdAt)),
          markingFailed,
        );
      },
      lost: () => claims.abandon(userId, ids),
    });
  }
  return serializeLongPoll(result);
}

function serializeLongPoll(result: LongPollResult) {
  const notifications = result.notifications.map(serializeNotification);
  switch (result.status) {
    case 'immediate':
      return { status: result.status, notifications, has_new_notifications: true };
    case 'new_notification':
      return { status: result.status, notifications, has_new_notifications: true, message: 'New notification received' };
    case 'timeout':
      return {
        status: result.status,
        notifications,
        has_new_notifications: false,
        message: 'No new notifications in the specified time period',
      };
  }
}

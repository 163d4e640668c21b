import { contract } from '../../contract';
import { assertOnContract } from '../http/answer-check';
import { plainGetQuery, type LeanRoute } from '../http/lean-route';
import type { DeliveryHub } from '../realtime/delivery-hub';
import { answerLongPoll, type LongPollAnswerDeps } from './long-poll-answer';
import { openStream, type StreamDeps } from './sse';

/** The real-time routes' plain requests, served before express (see http/lean-route.ts). */
export function notificationLeanRoutes(deps: LongPollAnswerDeps & StreamDeps & { hub: DeliveryHub; checkAnswers: boolean }): LeanRoute[] {
  const admits = (userId: number) => deps.hub.hasRoomFor(userId);
  return [longPollRoute(deps, admits), sseRoute(deps, admits)] as LeanRoute[];
}

const longPoll = contract.notifications.longPoll;
/** The query the lean long-poll reads itself: `timeout=N` or none. Anything else is express's parser's. */
const PLAIN_LONG_POLL_QUERY = /^(?:timeout=(\d{1,3}))?$/;

function longPollRoute(deps: LongPollAnswerDeps & { checkAnswers: boolean }, admits: (userId: number) => boolean): LeanRoute<number> {
  // What the schema made of each plain query: there are at most 1,001 of them, and a client re-polls
  // with the same one each time (the schema's parse cost 2 % of a broadcast's CPU).
  const timeouts = new Map<string, number | undefined>();
  return {
    route: longPoll,
    admits,
    /** The timeout in seconds, when the contract's schema accepts it. */
    plain: (req) => {
      const query = plainGetQuery(req, longPoll.path);
      if (query === undefined || !PLAIN_LONG_POLL_QUERY.test(query)) return undefined;
      if (!timeouts.has(query)) timeouts.set(query, timeoutIn(query));
      return timeouts.get(query);
    },
    // A continuation, not an async function: see answerLongPoll.
    serve: ({ req, res, userId, plain: timeoutSeconds, writeJson, log }) =>
      answerLongPoll(deps, { userId, authorization: req.headers.authorization }, timeoutSeconds * 1000, res, (error) =>
        log().error({ err: error }, 'marking delivered failed'),
      ).then((body) => {
        // As the test apps check every express route's answers.
        if (deps.checkAnswers) assertOnContract(longPoll, 200, body);
        writeJson(200, body);
      }),
  };
}

/** The timeout, in seconds, a plain query sets, when the contract's schema accepts it. */
function timeoutIn(query: string): number | undefined {
  const [, timeout] = PLAIN_LONG_POLL_QUERY.exec(query)!;
  const parsed = longPoll.query.safeParse(timeout === undefined ? {} : { timeout });
  return parsed.success ? parsed.data.timeout : undefined;
}

const sse = contract.notifications.sse;

function sseRoute(deps: StreamDeps, admits: (userId: number) => boolean): LeanRoute<true> {
  return {
    route: sse,
    admits,
    // The express route reads no query; one that has any goes there.
    plain: (req) => (plainGetQuery(req, sse.path) === '' ? true : undefined),
    serve: ({ req, res, userId, setHeaders, log }) =>
      openStream(deps, {
        res,
        userId,
        authorization: req.headers.authorization,
        lastEventId: req.headers['last-event-id'] as string | undefined,
        setHeaders,
        log,
      }),
  };
}

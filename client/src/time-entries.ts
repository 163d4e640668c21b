import type { z } from 'zod';
import type { TimeEntry as TimeEntrySchema } from '../../contract/time-entries';
import type { ApiClient } from './api-client';
import { UnexpectedAnswerError } from './errors';

export type TimeEntry = z.infer<typeof TimeEntrySchema>;
type StartBody = Parameters<ApiClient['timeEntries']['start']>[0]['body'];
/** The list's filters and ordering, as the query takes them (strings), without the cursor. */
export type TimeEntryFilters = Omit<NonNullable<NonNullable<Parameters<ApiClient['timeEntries']['list']>[0]>['query']>, 'cursor'>;

/**
 * What apps do with time entries again and again, over the typed client: a failed call throws
 * UnexpectedAnswerError with the server's status and body (a 400's fields, say).
 */
/** The stopped entry of a stop's answer; anything but a 200 is an UnexpectedAnswerError. */
function stopped(answer: Awaited<ReturnType<ApiClient['timeEntries']['stop']>>): TimeEntry {
  if (answer.status !== 200) throw new UnexpectedAnswerError(answer.status, answer.body);
  return answer.body;
}

export function timeEntryHelpers(api: ApiClient) {
  return {
    /** Starts a timer (or records a finished entry when `end_time` is given): the new entry. */
    async startTimer(entry: StartBody): Promise<TimeEntry> {
      const answer = await api.timeEntries.start({ body: entry });
      if (answer.status !== 201) throw new UnexpectedAnswerError(answer.status, answer.body);
      return answer.body;
    },

    /** Stops the timer with this id, or the running one when none is given: the stopped entry, or null when none ran. */
    async stopTimer(id?: number): Promise<TimeEntry | null> {
      if (id !== undefined) return stopped(await api.timeEntries.stop({ params: { id: String(id) } }));
      // The running one may be stopped elsewhere (another tab, another device) between the two
      // requests: then it is asked for again, once, and none running is null.
      for (let attempt = 1; ; attempt++) {
        const current = await api.timeEntries.currentActive();
        if (current.status === 404) return null;
        if (current.status !== 200) throw new UnexpectedAnswerError(current.status, current.body);
        const answer = await api.timeEntries.stop({ params: { id: String(current.body.id) } });
        if (answer.status !== 400 || attempt === 2) return stopped(answer);
      }
    },

    /** Every entry the filters match, in their order, page after page (`limit` is the page size). */
    async *allEntries(filters: TimeEntryFilters = {}): AsyncGenerator<TimeEntry, void, undefined> {
      for (let cursor: string | undefined; ; ) {
        const answer = await api.timeEntries.list({ query: { ...filters, cursor } });
        if (answer.status !== 200) throw new UnexpectedAnswerError(answer.status, answer.body);
        yield* answer.body.results;
        const next = answer.body.next && new URL(answer.body.next).searchParams.get('cursor');
        if (!next) return;
        cursor = next;
      }
    },
  };
}

import { extendApi } from '@anatine/zod-openapi';
import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import { authenticatedErrors, BooleanFilter, BoundedArray, Description, documented, Duration, errors, IdField, IntId, PageLimit, Timestamp, Title } from './common';

const c = initContract();

export const TimeEntry = z.object({
  id: z.number().int(),
  title: z.string(),
  description: z.string(),
  start_time: Timestamp,
  end_time: Timestamp.nullable(),
  duration: documented(Duration.nullable(), { description: 'End minus start, `HH:MM:SS`; null while the timer runs.' }),
  is_active: z.boolean(),
  user: extendApi(z.string(), { description: 'The username of the owner.' }),
  project: extendApi(z.string().nullable(), { description: 'The project’s name; null once the project was deleted.' }),
  tags: extendApi(z.array(z.string()), { description: 'The titles of the entry’s tags.' }),
  idle_duration: documented(Duration, { description: 'The idle sessions recorded for the entry, added up.' }),
  actual_duration: documented(Duration, {
    description: 'Duration minus idle time; while the timer runs, the time so far minus idle time.',
  }),
});

/** 0001-01-01T00:00:00Z: there is no year 0 in Postgres (nor in the calendar). */
const FIRST_INSTANT = -62_135_596_800_000;

/** An instant in a body: ISO 8601 with `Z` or an offset, from the year 1. */
const Instant = extendApi(
  z
    .string()
    .datetime({ offset: true })
    .refine((value) => Date.parse(value) >= FIRST_INSTANT, 'Enter a time from the year 1 on.'),
  { example: '2025-11-29T14:30:00.000Z' },
);
const TagIds = extendApi(BoundedArray(IdField, { max: 50 }), { description: 'Ids of the user’s own tags.' });

const CreateTimeEntry = z
  .object({
    title: Title,
    description: Description.default(''),
    project: documented(IdField, { description: 'A project the user is a member of.' }),
    tags: TagIds.default([]),
    start_time: extendApi(Instant.optional(), { description: 'Defaults to now. In the past: a timer started then.' }),
    end_time: extendApi(Instant.optional(), { description: 'Makes a finished (manual) entry; after `start_time`.' }),
  })
  .strict();

const UpdateTimeEntry = z
  .object({ title: Title, description: Description, project: IdField, tags: TagIds, start_time: Instant, end_time: Instant })
  .partial()
  .strict();

const IdlePeriod = z.object({ start_time: Instant, end_time: Instant }).strict();

const IdleRecorded = z.object({
  status: z.literal('idle_recorded'),
  total_idle_duration: Duration,
  actual_duration: Duration,
});

/** A day of the calendar from the year 1 (no 2025-02-30, no year 0: Postgres has none). */
function isRealDay(day: string): boolean {
  const time = Date.parse(`${day}T00:00:00Z`);
  return !day.startsWith('0000') && !Number.isNaN(time) && new Date(time).toISOString().startsWith(day);
}

/** A UTC day, YYYY-MM-DD. */
const Day = extendApi(
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'Enter a date as YYYY-MM-DD.')
    // Piped, so that a malformed value gets one message, not this one as well.
    .pipe(z.string().refine(isRealDay, 'Enter a real date.')),
  // Said outright: the document cannot tell what a piped schema accepts, and would describe any value.
  { type: 'string', format: 'date', example: '2025-11-29' },
);

/** The longest duration a column holds (2^31-1 s, 68 years): a larger filter value means the same. */
const MAX_DURATION_SECONDS = 2_147_483_647;

/** A duration filter: `HH:MM:SS` or whole seconds, as seconds. */
const DurationFilter = extendApi(
  z
    .string()
    .regex(/^(\d{1,9}|\d{1,6}:[0-5]\d:[0-5]\d)$/, 'Enter a duration as HH:MM:SS or whole seconds.')
    .transform((value) => {
      const [hours, minutes, seconds] = value.includes(':') ? value.split(':').map(Number) : [0, 0, Number(value)];
      return Math.min(hours * 3600 + minutes * 60 + seconds, MAX_DURATION_SECONDS);
    }),
  { example: '01:30:00' },
);

const TagIdList = extendApi(
  z
    .string()
    .regex(/^[1-9]\d{0,9}(,[1-9]\d{0,9}){0,49}$/, 'Enter tag ids separated by commas.')
    .transform((value) => [...new Set(value.split(',').map(Number))])
    .refine((ids) => ids.every((id) => IdField.safeParse(id).success), 'Enter tag ids that exist.'),
  { description: 'Comma-separated tag ids: entries that carry any of them.', example: '3,7' },
);

export const TIME_ENTRY_ORDERINGS = ['start_time', 'end_time', 'duration', 'title', 'project_name', 'is_active'] as const;
const ORDERING_OPTIONS = [...TIME_ENTRY_ORDERINGS, ...TIME_ENTRY_ORDERINGS.map((field) => `-${field}` as const)] as const;
const Ordering = z.enum(ORDERING_OPTIONS, { errorMap: () => ({ message: `Choose one of: ${ORDERING_OPTIONS.join(', ')}.` }) });
export type TimeEntryOrdering = z.infer<typeof Ordering>;

export const TIME_ENTRIES_PAGE = { default: 20, max: 100 } as const;

/** The filters of the list, which the summary and the export take too. */
export const TimeEntryFilterFields = z.object({
  start_date_after: documented(Day, { description: 'Started on or after this UTC day.' }).optional(),
  start_date_before: documented(Day, { description: 'Started on or before this UTC day.' }).optional(),
  end_date_after: documented(Day, { description: 'Ended on or after this UTC day (running entries never match).' }).optional(),
  end_date_before: documented(Day, { description: 'Ended on or before this UTC day (running entries never match).' }).optional(),
  duration_min: documented(DurationFilter, { description: 'At least this long (running entries never match).' }).optional(),
  duration_max: documented(DurationFilter, { description: 'At most this long (running entries never match).' }).optional(),
  project: documented(IntId, { description: 'A project the user is a member of (403 otherwise).' }).optional(),
  tags: TagIdList.optional(),
  is_active: BooleanFilter.optional(),
});
export type TimeEntryFilters = z.infer<typeof TimeEntryFilterFields>;

const ListQuery = TimeEntryFilterFields.extend({
  ordering: documented(Ordering, {
    description:
      'Sort field, `-` for descending; ties broken by id. Running entries sort after finished ones by `end_time` and `duration`.',
  }).default('-start_time'),
  // A cursor of the title or project ordering carries that text: 200 characters take up to 1,200 bytes
  // as JSON (control characters are escaped as \u0001), about 1,660 in base64url with the rest.
  cursor: extendApi(z.string().max(2000), { description: 'From `next` or `previous`; opaque.' }).optional(),
  limit: PageLimit(TIME_ENTRIES_PAGE.default, TIME_ENTRIES_PAGE.max),
}).strict();
export type TimeEntryListQuery = z.infer<typeof ListQuery>;

const TimeEntryPage = z.object({
  count: extendApi(z.number().int(), { description: 'How many entries match the filters, on all pages.' }),
  next: extendApi(z.string().url().nullable(), { description: 'URL of the next page; null on the last.' }),
  previous: extendApi(z.string().url().nullable(), { description: 'URL of the previous page; null on the first.' }),
  results: z.array(TimeEntry),
});

const EntryParams = z.object({ id: IntId });

export const SUMMARY_GROUPS = ['project', 'tag', 'day'] as const;

const Totals = z.object({
  count: z.number().int(),
  duration: documented(Duration, { description: 'Durations of the finished entries, added up.' }),
  idle_duration: Duration,
  actual_duration: documented(Duration, { description: 'The entries’ actual durations (a running one: so far), added up.' }),
});

const Summary = z.object({
  group_by: z.enum(SUMMARY_GROUPS),
  groups: z.array(
    Totals.extend({
      key: extendApi(z.union([z.number().int(), z.string()]).nullable(), {
        description: 'The project or tag id, or the UTC day; null for entries without a project or tag.',
      }),
      label: extendApi(z.string(), { description: 'The project’s name, the tag’s title or the day.' }),
    }),
  ),
  total: documented(Totals, { description: 'All matching entries, each counted once (an entry with two tags is in two tag groups).' }),
});

export const timeEntriesContract = c.router(
  {
    list: {
      method: 'GET',
      path: '/api/time_entries/',
      summary: "The user's time entries: filtered, ordered, in cursor pages",
      description: 'Days are UTC and inclusive. Every malformed parameter is a 400 naming it.',
      query: ListQuery,
      responses: { 200: TimeEntryPage, ...errors.badRequest, ...errors.forbidden },
    },
    summary: {
      method: 'GET',
      path: '/api/time_entries/summary/',
      summary: 'Totals of the matching entries per project, tag or UTC day',
      query: TimeEntryFilterFields.extend({ group_by: z.enum(SUMMARY_GROUPS).default('project') }).strict(),
      responses: { 200: Summary, ...errors.badRequest, ...errors.forbidden },
    },
    export: {
      method: 'GET',
      path: '/api/time_entries/export.csv',
      summary: 'The matching entries as CSV (RFC 4180), newest first',
      description:
        'Streamed row by row, with a header row. Cells that a spreadsheet would read as a formula ' +
        '(starting with `=`, `+`, `-`, `@`, tab or carriage return) are prefixed with `\'`.',
      query: TimeEntryFilterFields.strict(),
      responses: {
        200: c.otherResponse({ contentType: 'text/csv; charset=utf-8', body: z.unknown() }),
        ...errors.badRequest,
        ...errors.forbidden,
      },
    },
    start: {
      method: 'POST',
      path: '/api/time_entries/',
      summary: 'Start a timer (or record a finished entry with `end_time`)',
      description:
        'A user has at most one running entry: starting one stops the running one at the same instant. ' +
        'The project must be one the user is a member of (403), the tags the user’s own (400).',
      body: CreateTimeEntry,
      responses: { 201: TimeEntry, ...errors.badRequest, ...errors.forbidden },
    },
    currentActive: {
      method: 'GET',
      path: '/api/time_entries/current_active/',
      summary: 'The running entry',
      responses: { 200: TimeEntry, 404: extendApi(z.object({ detail: z.string() }), { example: { detail: 'No active time entry found.' } }) },
    },
    get: {
      method: 'GET',
      path: '/api/time_entries/:id/',
      summary: 'One time entry',
      pathParams: EntryParams,
      responses: { 200: TimeEntry, ...errors.notFound },
    },
    update: {
      method: 'PATCH',
      path: '/api/time_entries/:id/',
      summary: 'Change a time entry (same rules as when starting)',
      pathParams: EntryParams,
      body: UpdateTimeEntry,
      responses: { 200: TimeEntry, ...errors.badRequest, ...errors.forbidden, ...errors.notFound },
    },
    remove: {
      method: 'DELETE',
      path: '/api/time_entries/:id/',
      summary: 'Delete a time entry',
      pathParams: EntryParams,
      body: c.noBody(),
      responses: { 204: c.noBody(), ...errors.notFound },
    },
    stop: {
      method: 'POST',
      path: '/api/time_entries/:id/stop/',
      summary: 'Stop a running timer (400 when it is not running)',
      pathParams: EntryParams,
      body: c.noBody(),
      responses: { 200: TimeEntry, ...errors.badRequest, ...errors.notFound },
    },
    restart: {
      method: 'POST',
      path: '/api/time_entries/:id/restart/',
      summary: 'Start a new timer with the entry’s title, description, project and tags',
      description: 'Like starting one: a running entry is stopped at the same instant.',
      pathParams: EntryParams,
      body: c.noBody(),
      responses: { 201: TimeEntry, ...errors.forbidden, ...errors.notFound },
    },
    addIdle: {
      method: 'POST',
      path: '/api/time_entries/:id/add-idle/',
      summary: 'Record an idle period within the entry',
      description:
        'Times are cut to whole seconds. The period must end after it starts, lie within the entry (for a running ' +
        'entry: not end in the future) and not overlap an idle period already recorded.',
      pathParams: EntryParams,
      body: IdlePeriod,
      responses: { 201: IdleRecorded, ...errors.badRequest, ...errors.notFound },
    },
  },
  { commonResponses: authenticatedErrors },
);

import { and, asc, desc, eq, gte, inArray, isNotNull, isNull, lt, lte, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { z } from 'zod';
import {
  TIME_ENTRY_ORDERINGS,
  TimeEntryFilterFields,
  type TimeEntryFilters,
  type TimeEntryListQuery,
  type TimeEntryOrdering,
} from '../../contract/time-entries';
import type { Store, Tables } from '../../db/open-database';
import { OPEN_DURATION_S, OPEN_END_MS } from '../../db/schema/sort-keys';
import { ValidationFailed } from '../errors';
import { decodeCursor, encodeCursor, LAST_INSTANT_MS } from '../pagination/keyset-cursor';
import { reverse, rowsAfter, type SortDirection } from '../pagination/keyset';

const startOfDay = (day: string) => new Date(`${day}T00:00:00.000Z`);
// Times are kept to the millisecond, so this is "before the next day" without naming the day after
// 9999-12-31, which no database takes.
const endOfDay = (day: string) => new Date(`${day}T23:59:59.999Z`);

/** The filters of the list (and of the summary and export) as one SQL condition on the user's entries. */
export function filterCondition(t: Tables, userId: number, filters: TimeEntryFilters): SQL {
  const e = t.timeEntries;
  const f = filters;
  return and(
    eq(e.userId, userId),
    // Days are UTC and inclusive: "before 2025-11-30" takes all of the 30th.
    f.start_date_after === undefined ? undefined : gte(e.startTime, startOfDay(f.start_date_after)),
    f.start_date_before === undefined ? undefined : lte(e.startTime, endOfDay(f.start_date_before)),
    // End and duration filters read the sort keys, so that their indexes serve them; a running
    // entry's keys are the OPEN_* values, which these filters leave out.
    f.end_date_after === undefined && f.end_date_before === undefined ? undefined : lt(e.endKey, OPEN_END_MS),
    f.end_date_after === undefined ? undefined : gte(e.endKey, startOfDay(f.end_date_after).getTime()),
    f.end_date_before === undefined ? undefined : lte(e.endKey, endOfDay(f.end_date_before).getTime()),
    f.duration_min === undefined && f.duration_max === undefined ? undefined : lt(e.durationKey, OPEN_DURATION_S),
    f.duration_min === undefined ? undefined : gte(e.durationKey, f.duration_min),
    f.duration_max === undefined ? undefined : lte(e.durationKey, f.duration_max),
    f.project === undefined ? undefined : eq(e.projectId, f.project),
    // Said of end_time itself: SQLite cannot tell that is_active = 1 is the one-running-entry
    // index's `end_time is null`, and would read all of the user's entries instead.
    f.is_active === undefined ? undefined : f.is_active ? isNull(e.endTime) : isNotNull(e.endTime),
    f.tags === undefined
      ? undefined
      : sql`exists (select 1 from ${t.timeEntryTags} where ${t.timeEntryTags.timeEntryId} = ${e.id} and ${inArray(t.timeEntryTags.tagId, f.tags)})`,
  )!;
}

/** Whether any filter narrows the list (ordering, cursor and limit do not). */
export const isFiltered = (filters: TimeEntryFilters) =>
  Object.keys(TimeEntryFilterFields.shape).some((name) => filters[name as keyof TimeEntryFilters] !== undefined);

type Field = (typeof TIME_ENTRY_ORDERINGS)[number];

const MAX_INT = 2_147_483_647;
/** Milliseconds of an instant both databases hold: from the year 1 to the end of 9999. */
const CursorInstant = z.number().int().min(-62_135_596_800_000).max(LAST_INSTANT_MS);

/** A sort key: the expression the list orders by, and how its value travels in a cursor. */
interface SortKey {
  expression: SQLWrapper;
  /** What a cursor's value must be for this key: anything else was not made by us. */
  cursorValue: z.ZodType<string | number | boolean>;
  /** The value as the cursor carries it (JSON). */
  toCursor(value: unknown): string | number | boolean;
  /** The cursor's value bound as a query parameter the way the dialect stores it. */
  bind(value: string | number | boolean): unknown;
}

/**
 * Every ordering has a non-null key (running entries sort after finished ones by end and duration:
 * see the *_key columns), so that a keyset page is one row-value comparison on an index.
 */
export function sortKeys(t: Tables, projectName: SQLWrapper): Record<Field, SortKey> {
  const e = t.timeEntries;
  const plain = (expression: SQLWrapper, cursorValue: SortKey['cursorValue']): SortKey => ({
    expression,
    cursorValue,
    toCursor: (value) => value as string | number,
    bind: (value) => value,
  });
  return {
    start_time: {
      expression: e.startTime,
      cursorValue: CursorInstant,
      toCursor: (value) => (value as Date).getTime(),
      bind: (value) => sql.param(new Date(Number(value)), e.startTime),
    },
    end_time: plain(e.endKey, CursorInstant.or(z.literal(OPEN_END_MS))),
    duration: plain(e.durationKey, z.number().int().min(-MAX_INT).max(MAX_INT)),
    title: plain(e.title, z.string()),
    project_name: plain(projectName, z.string()),
    is_active: {
      expression: e.isActive,
      cursorValue: z.boolean(),
      toCursor: (value) => Boolean(value),
      bind: (value) => sql.param(Boolean(value), e.isActive),
    },
  };
}

export interface ParsedOrdering {
  field: Field;
  direction: SortDirection;
}

export const parseOrdering = (ordering: TimeEntryOrdering): ParsedOrdering =>
  ordering.startsWith('-') ? { field: ordering.slice(1) as Field, direction: 'desc' } : { field: ordering as Field, direction: 'asc' };

/** Where a page starts: after (or, walking back, before) the row with this key and id. */
const PageCursor = z
  .object({
    o: z.string(),
    k: z.union([z.string().max(500), z.number(), z.boolean()]),
    i: z.number().int().min(1).max(MAX_INT),
    b: z.literal(true).optional(),
  })
  .strict();
type PageCursor = z.infer<typeof PageCursor>;

export interface PagePlan {
  /** The condition that starts the page where the cursor says, if there is one. */
  condition?: SQL;
  /** The order to read the rows in (reversed when walking back). */
  orderBy: SQL[];
  walkingBack: boolean;
  fromCursor: boolean;
}

/** Reads the cursor (a 400 when it was tampered with or belongs to another ordering) and plans the page's query. */
export function planPage(key: SortKey, id: SQLWrapper, ordering: TimeEntryOrdering, cursor: string | undefined): PagePlan {
  const { direction } = parseOrdering(ordering);
  const position = cursor ? decodeCursor(cursor, PageCursor) : undefined;
  if (position && (position.o !== ordering || !key.cursorValue.safeParse(position.k).success)) {
    throw ValidationFailed.field('cursor', 'Invalid cursor.');
  }
  const walkingBack = position?.b === true;
  const readDirection = walkingBack ? reverse(direction) : direction;
  const by = readDirection === 'asc' ? asc : desc;
  return {
    condition: position && rowsAfter(key.expression, id, key.bind(position.k), position.i, readDirection),
    orderBy: [by(key.expression as SQL), by(id as SQL)],
    walkingBack,
    fromCursor: position !== undefined,
  };
}

/** The cursor of the page after `row` (or, with `back`, before it). */
export const cursorAt = (ordering: TimeEntryOrdering, key: SortKey, row: { sortKey: unknown; id: number }, back = false): string =>
  encodeCursor({ o: ordering, k: key.toCursor(row.sortKey), i: row.id, ...(back ? { b: true } : {}) } satisfies PageCursor);

/** Tag titles of each entry, by title: one query for a whole page. */
export async function tagTitlesOf(store: Store, entryIds: number[]): Promise<Map<number, string[]>> {
  const titles = new Map<number, string[]>();
  if (entryIds.length === 0) return titles;
  const { db, t } = store;
  const rows = await db
    .select({ entryId: t.timeEntryTags.timeEntryId, title: t.tags.title })
    .from(t.timeEntryTags)
    .innerJoin(t.tags, eq(t.tags.id, t.timeEntryTags.tagId))
    .where(inArray(t.timeEntryTags.timeEntryId, entryIds))
    .orderBy(asc(t.tags.title));
  for (const row of rows) titles.set(row.entryId, [...(titles.get(row.entryId) ?? []), row.title]);
  return titles;
}

/**
 * The query of one page of the list (limit + 1 rows, to tell whether another page follows), with
 * what the page's answer needs: the sort key, the plan and the filters' condition (for the count).
 */
export function pageQuery(store: Store, userId: number, query: TimeEntryListQuery) {
  const { db, t } = store;
  const e = t.timeEntries;
  const projectName = sql<string>`coalesce(${t.projects.title}, '')`;
  const key = sortKeys(t, projectName)[parseOrdering(query.ordering).field];
  const plan = planPage(key, e.id, query.ordering, query.cursor);
  const matching = filterCondition(t, userId, query);
  const rows = db
    .select({ entry: e, projectName: t.projects.title, sortKey: key.expression as typeof projectName })
    .from(e)
    .leftJoin(t.projects, eq(t.projects.id, e.projectId))
    .where(and(matching, plan.condition))
    .orderBy(...plan.orderBy)
    .limit(query.limit + 1);
  return { rows, key, plan, matching };
}

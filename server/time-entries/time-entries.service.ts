import { and, asc, count, eq, gt, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { TimeEntryFilters, TimeEntryListQuery } from '../../contract/time-entries';
import { isUniqueViolation } from '../../db/errors';
import { rowsOf, type Db, type Store, type Transaction } from '../../db/open-database';
import type { AuthUser } from '../auth/auth.service';
import { Forbidden, NotFound, NotPossibleNow, ValidationFailed } from '../errors';
import type { ProjectsService } from '../projects/projects.service';
import { cursorAt, isFiltered, pageQuery, tagTitlesOf } from './time-entry-list';

export type TimeEntryRow = Store['t']['timeEntries']['$inferSelect'];

/** An entry with what its answer shows besides its own columns. */
export interface TimeEntryView {
  entry: TimeEntryRow;
  username: string;
  projectName: string | null;
  tagTitles: string[];
}

export interface TimeEntryInput {
  title: string;
  description: string;
  /** Null only when restarting an entry whose project was deleted since. */
  project: number | null;
  tags: number[];
  start_time?: string;
  end_time?: string;
}

export type TimeEntryChanges = Partial<Omit<TimeEntryInput, 'project' | 'start_time' | 'end_time'> & { project: number; start_time: string; end_time: string }>;

export interface TimeEntryPage {
  count: number;
  items: TimeEntryView[];
  nextCursor: string | null;
  previousCursor: string | null;
}

/** The longest a time entry may last: a year (a running one is stopped when it starts another). */
const MAX_SPAN_MS = 366 * 24 * 3600_000;

/** Concurrent starts of one user race on the one-running-entry index; each retry stops the winner's. */
const START_ATTEMPTS = 30;

const NO_ACTIVE_ENTRY = 'No active time entry found.';
const END_BEFORE_START = 'End time must be after start time';

/** Idle periods are kept to whole seconds (SPEC: "microseconds are removed"). */
const toSecond = (time: Date) => new Date(Math.floor(time.getTime() / 1000) * 1000);

export class TimeEntriesService {
  constructor(
    private readonly store: Store,
    private readonly projects: ProjectsService,
  ) {}

  /**
   * Starts a timer, or records a finished entry when `end_time` is given. A running entry of the
   * user is stopped at the same instant, in the same transaction as the new one is written.
   */
  async start(user: AuthUser, input: TimeEntryInput): Promise<TimeEntryView> {
    if (input.project !== null) await this.checkProject(user.id, input.project);
    await this.checkTags(user.id, input.tags);
    const givenStart = input.start_time ? new Date(input.start_time) : undefined;
    const endTime = input.end_time ? new Date(input.end_time) : null;
    checkSpan(givenStart ?? new Date(), endTime);

    const { t } = this.store;
    const entry = await this.retryingStartRaces(() => {
      // Read for each attempt: a retry comes after the entry that beat it, and must start later.
      const now = new Date();
      return this.store.transaction(function* (tx) {
        // The running entry ends the instant the new one starts: a chain without gaps or overlaps.
        const stopped = endTime ? [] : yield* stopRunning(tx, t, user.id, now);
        const startTime = givenStart ?? stopped[0]?.endTime ?? now;
        const values = {
          userId: user.id,
          projectId: input.project,
          title: input.title,
          description: input.description,
          startTime,
          endTime,
          idleSeconds: 0,
          createdAt: now,
        };
        const [created] = yield* rowsOf(tx.insert(t.timeEntries).values(values).returning());
        yield* replaceTags(tx, t, created.id, input.tags);
        return created;
      });
    });
    return this.view(user, entry);
  }

  /** A new running entry with the title, description, project and tags of an earlier one ("continue"). */
  async restart(user: AuthUser, id: number): Promise<TimeEntryView> {
    const earlier = await this.own(user.id, id);
    const { db, t } = this.store;
    const tags = await db.select({ id: t.timeEntryTags.tagId }).from(t.timeEntryTags).where(eq(t.timeEntryTags.timeEntryId, id));
    return this.start(user, {
      title: earlier.title,
      description: earlier.description,
      project: earlier.projectId,
      tags: tags.map((tag) => tag.id),
    });
  }

  async get(user: AuthUser, id: number): Promise<TimeEntryView> {
    return this.view(user, await this.own(user.id, id));
  }

  async currentActive(user: AuthUser): Promise<TimeEntryView> {
    const { db, t } = this.store;
    const [entry] = await db
      .select()
      .from(t.timeEntries)
      .where(and(eq(t.timeEntries.userId, user.id), isNull(t.timeEntries.endTime)));
    if (!entry) throw new NotFound(NO_ACTIVE_ENTRY);
    return this.view(user, entry);
  }

  async stop(user: AuthUser, id: number): Promise<TimeEntryView> {
    const { db, t } = this.store;
    const [stopped] = await db
      .update(t.timeEntries)
      .set({ endTime: new Date() })
      .where(and(eq(t.timeEntries.id, id), eq(t.timeEntries.userId, user.id), isNull(t.timeEntries.endTime)))
      .returning();
    if (stopped) return this.view(user, stopped);
    await this.own(user.id, id);
    throw new NotPossibleNow('This time entry is not active.');
  }

  async update(user: AuthUser, id: number, changes: TimeEntryChanges): Promise<TimeEntryView> {
    await this.own(user.id, id);
    if (changes.project !== undefined) await this.checkProject(user.id, changes.project);
    if (changes.tags) await this.checkTags(user.id, changes.tags);
    const givenStart = changes.start_time ? new Date(changes.start_time) : undefined;
    const givenEnd = changes.end_time ? new Date(changes.end_time) : undefined;

    const { t } = this.store;
    const e = t.timeEntries;
    const set = {
      ...(changes.title !== undefined && { title: changes.title }),
      ...(changes.description !== undefined && { description: changes.description }),
      ...(changes.project !== undefined && { projectId: changes.project }),
      // A time not given stays the entry's as it is when the UPDATE runs, not as it was read above:
      // a stop or a start in between must not be undone (the timer set going again).
      startTime: givenStart ?? sql`${e.startTime}`,
      endTime: givenEnd ?? sql`${e.endTime}`,
    };
    const updated = await this.store.transaction(function* (tx) {
      const [row] = yield* rowsOf(
        tx
          .update(e)
          .set(set)
          .where(and(eq(e.id, id), eq(e.userId, user.id)))
          .returning(),
      );
      if (!row) throw new NotFound();
      // The times' rules and the idle periods, which must still lie within the entry, are checked
      // after the UPDATE, which holds the entry's row lock: a concurrent stop or add-idle cannot
      // slip in between.
      if (givenStart || givenEnd) checkSpan(row.startTime, row.endTime);
      const [outside] = yield* rowsOf(
        tx
          .select({ id: t.idleSessions.id })
          .from(t.idleSessions)
          .where(and(eq(t.idleSessions.timeEntryId, id), outsideOf(t, row.startTime, row.endTime)))
          .limit(1),
      );
      if (outside) throw ValidationFailed.field('non_field_errors', 'Idle periods recorded for this entry would lie outside it.');
      if (changes.tags) yield* replaceTags(tx, t, id, changes.tags, true);
      return row;
    });
    return this.view(user, updated);
  }

  async remove(userId: number, id: number): Promise<void> {
    const { db, t } = this.store;
    const removed = await db
      .delete(t.timeEntries)
      .where(and(eq(t.timeEntries.id, id), eq(t.timeEntries.userId, userId)))
      .returning({ id: t.timeEntries.id });
    if (removed.length === 0) throw new NotFound();
  }

  /**
   * Records an idle period within the entry. The entry's row is updated first (its idle total),
   * which serializes concurrent additions to one entry on Postgres, so the overlap check that
   * follows sees every period committed before it.
   */
  async addIdle(user: AuthUser, id: number, period: { start_time: string; end_time: string }) {
    const given = { start: new Date(period.start_time), end: new Date(period.end_time) };
    const start = toSecond(given.start);
    const end = toSecond(given.end);
    if (end <= start) throw ValidationFailed.field('end_time', END_BEFORE_START);
    const seconds = (end.getTime() - start.getTime()) / 1000;
    const now = new Date();
    const { t } = this.store;
    const entry = await this.store.transaction(function* (tx) {
      const [row] = yield* rowsOf(
        tx
          .update(t.timeEntries)
          .set({ idleSeconds: sql`${t.timeEntries.idleSeconds} + ${seconds}` })
          .where(and(eq(t.timeEntries.id, id), eq(t.timeEntries.userId, user.id)))
          .returning(),
      );
      if (!row) throw new NotFound();
      // The bounds are checked on the times as given: cut to the second, a period that starts with
      // the entry (…:10.500) would seem to start before it (…:10).
      if (given.start < row.startTime) throw ValidationFailed.field('start_time', 'The idle period starts before the time entry.');
      if (given.end > (row.endTime ?? now)) {
        const limit = row.endTime ? 'ends after the time entry' : 'ends in the future';
        throw ValidationFailed.field('end_time', `The idle period ${limit}.`);
      }
      const [overlapping] = yield* rowsOf(
        tx
          .select()
          .from(t.idleSessions)
          .where(and(eq(t.idleSessions.timeEntryId, id), lt(t.idleSessions.startTime, end), gt(t.idleSessions.endTime, start)))
          .orderBy(asc(t.idleSessions.startTime))
          .limit(1),
      );
      if (overlapping) {
        const other = `${overlapping.startTime.toISOString()} to ${overlapping.endTime.toISOString()}`;
        throw ValidationFailed.field('non_field_errors', `The idle period overlaps one already recorded (${other}).`);
      }
      yield* rowsOf(tx.insert(t.idleSessions).values({ timeEntryId: id, startTime: start, endTime: end, createdAt: now }).returning());
      return row;
    });
    return { entry, now };
  }

  /** One page of the user's entries, with the exact number of entries the filters match. */
  async list(user: AuthUser, query: TimeEntryListQuery): Promise<TimeEntryPage> {
    if (query.project !== undefined) await this.projects.requireMember(user.id, query.project);
    const { rows: pageRows, key, plan, matching } = pageQuery(this.store, user.id, query);
    const [rows, total] = await Promise.all([pageRows, this.countMatching(user.id, query, matching)]);
    const hasMore = rows.length > query.limit;
    const page = rows.slice(0, query.limit);
    if (plan.walkingBack) page.reverse();
    const first = page[0];
    const last = page.at(-1);
    const at = (row: (typeof page)[number]) => ({ sortKey: row.sortKey, id: row.entry.id });
    // Walking forward, a page reached by a cursor has one before it; walking back, the page came from one after it.
    const hasNext = plan.walkingBack ? plan.fromCursor : hasMore;
    const hasPrevious = plan.walkingBack ? hasMore : plan.fromCursor;
    const tagTitles = await tagTitlesOf(this.store, page.map((row) => row.entry.id));
    return {
      count: total,
      items: page.map((row) => ({
        entry: row.entry,
        username: user.username,
        projectName: row.projectName,
        tagTitles: tagTitles.get(row.entry.id) ?? [],
      })),
      nextCursor: hasNext && last ? cursorAt(query.ordering, key, at(last)) : null,
      previousCursor: hasPrevious && first ? cursorAt(query.ordering, key, at(first), true) : null,
    };
  }

  /**
   * The exact number of entries the filters match. Unfiltered, it is the count the database keeps
   * per user (time_entry_counts), one row whatever the user's size; filtered, a count that the
   * filter's index narrows.
   */
  private async countMatching(userId: number, filters: TimeEntryFilters, matching: SQL): Promise<number> {
    const { db, t } = this.store;
    if (!isFiltered(filters)) {
      const [kept] = await db.select({ entries: t.timeEntryCounts.entries }).from(t.timeEntryCounts).where(eq(t.timeEntryCounts.userId, userId));
      return kept?.entries ?? 0;
    }
    const [{ total }] = await db.select({ total: count() }).from(t.timeEntries).where(matching);
    return total;
  }

  /** The entry if it is the user's; NotFound otherwise, whether or not it exists. */
  private async own(userId: number, id: number): Promise<TimeEntryRow> {
    const { db, t } = this.store;
    const [entry] = await db
      .select()
      .from(t.timeEntries)
      .where(and(eq(t.timeEntries.id, id), eq(t.timeEntries.userId, userId)));
    if (!entry) throw new NotFound();
    return entry;
  }

  private async view(user: AuthUser, entry: TimeEntryRow): Promise<TimeEntryView> {
    const { db, t } = this.store;
    const [project] = entry.projectId
      ? await db.select({ title: t.projects.title }).from(t.projects).where(eq(t.projects.id, entry.projectId))
      : [];
    const tagTitles = await tagTitlesOf(this.store, [entry.id]);
    return { entry, username: user.username, projectName: project?.title ?? null, tagTitles: tagTitles.get(entry.id) ?? [] };
  }

  /** An entry's project: one the user is a member of (403); an id that names no project is a 400. */
  private async checkProject(userId: number, projectId: number): Promise<void> {
    try {
      await this.projects.get(userId, projectId);
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
      if (await this.projects.exists(projectId)) throw new Forbidden('You are not a member of this project.');
      throw ValidationFailed.field('project', `Invalid pk "${projectId}" - object does not exist.`);
    }
  }

  /** Tags must be the user's own: anyone else's id is reported as not existing. */
  private async checkTags(userId: number, tagIds: number[]): Promise<void> {
    if (tagIds.length === 0) return;
    const { db, t } = this.store;
    const own = await db
      .select({ id: t.tags.id })
      .from(t.tags)
      .where(and(eq(t.tags.userId, userId), inArray(t.tags.id, tagIds)));
    const found = new Set(own.map((tag) => tag.id));
    const missing = [...new Set(tagIds)].filter((id) => !found.has(id));
    if (missing.length > 0) throw ValidationFailed.field('tags', ...missing.map((id) => `Invalid pk "${id}" - object does not exist.`));
  }

  private async retryingStartRaces<T>(start: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (error) {
        if (!isUniqueViolation(error) || attempt >= START_ATTEMPTS) throw error;
      }
    }
  }
}

/**
 * Stops the user's running entry at `at`, or at its own start if that is later (a start taken just
 * before a concurrent one's commit): an entry never ends before it starts.
 */
function* stopRunning(tx: Db, t: Store['t'], userId: number, at: Date): Transaction<Array<{ endTime: Date | null }>> {
  const e = t.timeEntries;
  const now = sql.param(at, e.endTime);
  return yield* rowsOf(
    tx
      .update(e)
      .set({ endTime: sql`case when ${e.startTime} > ${now} then ${e.startTime} else ${now} end` })
      .where(and(eq(e.userId, userId), isNull(e.endTime)))
      .returning({ endTime: e.endTime }),
  );
}

/**
 * The rules of an entry's times: it ends after it starts, a running one did not start in the
 * future, and none lasts longer than MAX_SPAN (which keeps durations far inside the columns' range).
 */
function checkSpan(start: Date, end: Date | null): void {
  if (end && end <= start) throw ValidationFailed.field('end_time', END_BEFORE_START);
  const now = new Date();
  if (!end && start > now) throw ValidationFailed.field('start_time', 'A running timer cannot start in the future.');
  if ((end ?? now).getTime() - start.getTime() > MAX_SPAN_MS) {
    throw ValidationFailed.field(end ? 'end_time' : 'start_time', `A time entry can last at most ${MAX_SPAN_MS / 3600_000} hours.`);
  }
}

function* replaceTags(tx: Db, t: Store['t'], entryId: number, tagIds: number[], clearFirst = false): Transaction<void> {
  if (clearFirst) yield* rowsOf(tx.delete(t.timeEntryTags).where(eq(t.timeEntryTags.timeEntryId, entryId)).returning());
  const unique = [...new Set(tagIds)];
  if (unique.length === 0) return;
  yield* rowsOf(
    tx
      .insert(t.timeEntryTags)
      .values(unique.map((tagId) => ({ timeEntryId: entryId, tagId })))
      .returning(),
  );
}

/**
 * Idle periods that would not lie within an entry running from `start` to `end` (or still running).
 * A period is kept cut to the second, so one added from the entry's start (…:10.500) is kept from
 * …:10: compared with the start cut likewise, as add-idle compares the times as given.
 */
function outsideOf(t: Store['t'], start: Date, end: Date | null) {
  const before = lt(t.idleSessions.startTime, toSecond(start));
  return end ? sql`(${before} or ${gt(t.idleSessions.endTime, end)})` : before;
}

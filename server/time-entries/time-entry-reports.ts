import { and, count, desc, eq, isNotNull, isNull, sql, sum } from 'drizzle-orm';
import type { SUMMARY_GROUPS, TimeEntryFilters } from '../../contract/time-entries';
import type { PgSelect } from 'drizzle-orm/pg-core';
import { rowsOf, type Store } from '../../db/open-database';
import type { AuthUser } from '../auth/auth.service';
import type { ProjectsService } from '../projects/projects.service';
import { rowsAfter } from '../pagination/keyset';
import { filterCondition, tagTitlesOf } from './time-entry-list';
import { actualSeconds } from './time-entry.serializer';
import type { TimeEntryView } from './time-entries.service';

export type SummaryGroup = (typeof SUMMARY_GROUPS)[number];

/** Seconds and counts of a group of entries (the serializer formats them). */
export interface Totals {
  count: number;
  durationSeconds: number;
  idleSeconds: number;
  actualSeconds: number;
}

export interface GroupTotals extends Totals {
  key: number | string | null;
  label: string;
}

/** Rows per query while exporting: the export streams, so memory stays bounded whatever the count. */
const EXPORT_BATCH = 500;

const NO_PROJECT = '(no project)';
const NO_TAG = '(no tag)';

const emptyTotals = (): Totals => ({ count: 0, durationSeconds: 0, idleSeconds: 0, actualSeconds: 0 });

/** The sums of a row of finishedSums: null where no entry was added up. */
const totalsOf = (row: { [K in keyof Totals]: number | null } | undefined): Totals => ({
  count: row?.count ?? 0,
  durationSeconds: row?.durationSeconds ?? 0,
  idleSeconds: row?.idleSeconds ?? 0,
  actualSeconds: row?.actualSeconds ?? 0,
});

/** Reports over the user's entries, with the list's filters: totals per group, and the CSV export. */
export class TimeEntryReports {
  constructor(
    private readonly store: Store,
    private readonly projects: ProjectsService,
  ) {}

  /**
   * Totals per project, tag or UTC day, and over all. Finished entries are added up by the
   * database; the running entry (a user has at most one) is added here, with its time so far. The
   * three reads see one snapshot: a timer stopped between them counted in the total and in no group.
   */
  async summary(user: AuthUser, filters: TimeEntryFilters, groupBy: SummaryGroup, now = new Date()) {
    if (filters.project !== undefined) await this.projects.requireMember(user.id, filters.project);
    const e = this.store.t.timeEntries;
    const matching = filterCondition(this.store.t, user.id, filters);
    const finishedOnes = and(matching, isNotNull(e.endTime));
    const { key, label, joined } = this.grouping(groupBy);
    const sums = this.finishedSums();
    const { finished, totals, running } = await this.store.snapshot(function* (tx) {
      const finished = yield* rowsOf(joined(tx.select({ key, label, ...sums }).from(e).$dynamic()).where(finishedOnes).groupBy(key, label));
      const [totals] = yield* rowsOf(tx.select(sums).from(e).where(finishedOnes));
      const running = yield* rowsOf(joined(tx.select({ key, label, entry: e }).from(e).$dynamic()).where(and(matching, isNull(e.endTime))));
      return { finished, totals, running };
    });
    const groups = new Map<string, GroupTotals>();
    const labelOf = (label: string | null) => label ?? (groupBy === 'tag' ? NO_TAG : NO_PROJECT);
    for (const row of finished) groups.set(String(row.key), { ...row, label: labelOf(row.label) });
    const total = totalsOf(totals);
    for (const row of running) {
      const group = groups.get(String(row.key)) ?? { key: row.key, label: labelOf(row.label), ...emptyTotals() };
      groups.set(String(row.key), addRunning(group, row.entry, now));
    }
    if (running[0]) addRunning(total, running[0].entry, now);
    return { groupBy, groups: [...groups.values()].sort(byLabel), total };
  }

  /**
   * The matching entries, newest first, in batches read one after the other by keyset (so the
   * export neither holds the whole result nor slows down with depth).
   */
  async *exportViews(user: AuthUser, filters: TimeEntryFilters): AsyncGenerator<TimeEntryView> {
    if (filters.project !== undefined) await this.projects.requireMember(user.id, filters.project);
    const { db, t } = this.store;
    const e = t.timeEntries;
    const matching = filterCondition(t, user.id, filters);
    let after: { startTime: Date; id: number } | undefined;
    for (;;) {
      const rows = await db
        .select({ entry: e, projectName: t.projects.title })
        .from(e)
        .leftJoin(t.projects, eq(t.projects.id, e.projectId))
        .where(and(matching, after && rowsAfter(e.startTime, e.id, sql.param(after.startTime, e.startTime), after.id, 'desc')))
        .orderBy(desc(e.startTime), desc(e.id))
        .limit(EXPORT_BATCH);
      const titles = await tagTitlesOf(this.store, rows.map((row) => row.entry.id));
      for (const row of rows) {
        yield { entry: row.entry, username: user.username, projectName: row.projectName, tagTitles: titles.get(row.entry.id) ?? [] };
      }
      if (rows.length < EXPORT_BATCH) return;
      const last = rows[rows.length - 1].entry;
      after = { startTime: last.startTime, id: last.id };
    }
  }

  /**
   * The totals of finished entries, added up by the database. Each entry's actual time is counted
   * as its answer shows it (actualSeconds), never below zero: idle periods are cut to whole seconds,
   * so those of an entry that starts or ends within a second may add up to a second more than its
   * duration.
   */
  private finishedSums() {
    const e = this.store.t.timeEntries;
    return {
      count: count(),
      durationSeconds: sum(e.durationSeconds).mapWith(Number),
      idleSeconds: sum(e.idleSeconds).mapWith(Number),
      actualSeconds: sum(sql`case when ${e.durationSeconds} > ${e.idleSeconds} then ${e.durationSeconds} - ${e.idleSeconds} else 0 end`).mapWith(
        Number,
      ),
    };
  }

  /** The group's key and label (null: no project, no tag), and the joins that bring them. */
  private grouping(groupBy: SummaryGroup) {
    const { t } = this.store;
    const e = t.timeEntries;
    if (groupBy === 'project') {
      return {
        key: e.projectId,
        label: t.projects.title,
        joined: <Q extends PgSelect>(query: Q) => query.leftJoin(t.projects, eq(t.projects.id, e.projectId)),
      };
    }
    if (groupBy === 'tag') {
      return {
        key: t.tags.id,
        label: t.tags.title,
        joined: <Q extends PgSelect>(query: Q) =>
          query.leftJoin(t.timeEntryTags, eq(t.timeEntryTags.timeEntryId, e.id)).leftJoin(t.tags, eq(t.tags.id, t.timeEntryTags.tagId)),
      };
    }
    return { key: e.startDay, label: e.startDay, joined: <Q extends PgSelect>(query: Q) => query };
  }
}

function addRunning<T extends Totals>(totals: T, entry: TimeEntryView['entry'], now: Date): T {
  totals.count += 1;
  totals.idleSeconds += entry.idleSeconds;
  totals.actualSeconds += actualSeconds(entry, now);
  return totals;
}

const byLabel = (a: GroupTotals, b: GroupTotals) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);

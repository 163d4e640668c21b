import type { GroupTotals, SummaryGroup, Totals } from './time-entry-reports';
import type { TimeEntryRow, TimeEntryView } from './time-entries.service';

/** Seconds as `HH:MM:SS`; hours may pass 24. */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor((seconds % 3600) / 60))}:${pad(seconds % 60)}`;
}

/**
 * Duration minus idle time; for a running entry, the time so far (until `now`) minus idle time.
 * Never below zero: idle periods are cut to whole seconds, and may outlast the entry by a second.
 */
export function actualSeconds(entry: TimeEntryRow, now: Date): number {
  const elapsed = entry.durationSeconds ?? Math.floor((now.getTime() - entry.startTime.getTime()) / 1000);
  return Math.max(0, elapsed - entry.idleSeconds);
}

export const serializeTimeEntry = ({ entry, username, projectName, tagTitles }: TimeEntryView, now = new Date()) => ({
  id: entry.id,
  title: entry.title,
  description: entry.description,
  start_time: entry.startTime.toISOString(),
  end_time: entry.endTime?.toISOString() ?? null,
  duration: entry.durationSeconds === null ? null : formatDuration(entry.durationSeconds),
  is_active: entry.endTime === null,
  user: username,
  project: projectName,
  tags: tagTitles,
  idle_duration: formatDuration(entry.idleSeconds),
  actual_duration: formatDuration(actualSeconds(entry, now)),
});

export const serializeIdleRecorded = (entry: TimeEntryRow, now: Date) => ({
  status: 'idle_recorded' as const,
  total_idle_duration: formatDuration(entry.idleSeconds),
  actual_duration: formatDuration(actualSeconds(entry, now)),
});

const serializeTotals = (totals: Totals) => ({
  count: totals.count,
  duration: formatDuration(totals.durationSeconds),
  idle_duration: formatDuration(totals.idleSeconds),
  actual_duration: formatDuration(totals.actualSeconds),
});

export const serializeSummary = (summary: { groupBy: SummaryGroup; groups: GroupTotals[]; total: Totals }) => ({
  group_by: summary.groupBy,
  groups: summary.groups.map((group) => ({ ...serializeTotals(group), key: group.key, label: group.label })),
  total: serializeTotals(summary.total),
});

/** The CSV export's columns: the entry as the API shows it, tags joined by ", ". */
export const CSV_COLUMNS = [
  'id',
  'title',
  'description',
  'project',
  'tags',
  'start_time',
  'end_time',
  'duration',
  'idle_duration',
  'actual_duration',
  'is_active',
] as const;

export function csvRecordOf(view: TimeEntryView, now = new Date()): Record<(typeof CSV_COLUMNS)[number], string | number | boolean | null> {
  const entry = serializeTimeEntry(view, now);
  return { ...entry, tags: entry.tags.join(', ') };
}

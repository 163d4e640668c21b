// Helpers for the time-entries suites: setting up projects, tags and entries through the API, reading
// a user's rows straight from the database (to show that a refused request changed nothing), walking
// the list's cursor pages, and computing the order the list must have from the entries themselves.
import { asc, eq, inArray } from 'drizzle-orm';
import { expect } from 'vitest';
import type { ApiContext, TestUser } from './api';
import { joinProject } from './memberships';

export interface TimeEntry {
  id: number;
  title: string;
  description: string;
  start_time: string;
  end_time: string | null;
  duration: string | null;
  is_active: boolean;
  user: string;
  project: string | null;
  tags: string[];
  idle_duration: string;
  actual_duration: string;
}

export interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: TimeEntry[];
}

export const ISO_WITH_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const HH_MM_SS = /^\d{2,}:[0-5]\d:[0-5]\d$/;
export const NOT_FOUND = { detail: 'Not found.' };
export const END_BEFORE_START = 'End time must be after start time';
export const NO_ACTIVE = { detail: 'No active time entry found.' };

export const ORDERING_FIELDS = ['start_time', 'end_time', 'duration', 'title', 'project_name', 'is_active'] as const;
export const ORDERINGS = [...ORDERING_FIELDS, ...ORDERING_FIELDS.map((field) => `-${field}`)];

/** `HH:MM:SS` (hours may pass 24) as seconds. */
export const secondsOf = (duration: string): number => {
  const [hours, minutes, seconds] = duration.split(':').map(Number);
  return hours * 3600 + minutes * 60 + seconds;
};

/** The API's calls for time entries and what they need, each expecting success unless it says otherwise. */
export function timeEntryApi(ctx: ApiContext) {
  const api = {
    async project(owner: TestUser, title = 'Project', members: TestUser[] = []): Promise<{ id: number; title: string }> {
      const res = await ctx.http.post('/api/projects/').set(owner.auth).send({ title }).expect(201);
      for (const member of members) await joinProject(ctx.http, res.body, member, owner);
      return res.body;
    },

    async tag(owner: TestUser, title: string): Promise<{ id: number; title: string }> {
      return (await ctx.http.post('/api/tags/').set(owner.auth).send({ title }).expect(201)).body;
    },

    /** POST /api/time_entries/ expecting 201. */
    async start(user: TestUser, body: Record<string, unknown>): Promise<TimeEntry> {
      const res = await ctx.http.post('/api/time_entries/').set(user.auth).send(body);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body;
    },

    /** A finished (manual) entry from `start` to `end`. */
    record(user: TestUser, project: number, title: string, start: string, end: string, tags: number[] = []): Promise<TimeEntry> {
      return api.start(user, { title, project, tags, start_time: start, end_time: end });
    },

    async get(user: TestUser, id: number): Promise<TimeEntry> {
      return (await ctx.http.get(`/api/time_entries/${id}/`).set(user.auth).expect(200)).body;
    },

    /** GET /api/time_entries/ with a query string (or a URL from `next`/`previous`), expecting 200. */
    async list(user: TestUser, query: string | URL = ''): Promise<Page> {
      const path = query instanceof URL ? `${query.pathname}${query.search}` : `/api/time_entries/${query ? `?${query}` : ''}`;
      const res = await ctx.http.get(path).set(user.auth);
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body;
    },

    /** Every entry the list shows for the query, following `next` to the end. */
    async listAll(user: TestUser, query = ''): Promise<TimeEntry[]> {
      const pages = await api.walkForward(user, query);
      return pages.flatMap((page) => page.results);
    },

    /** The pages of a query from the first, following `next`. */
    async walkForward(user: TestUser, query: string): Promise<Page[]> {
      const pages = [await api.list(user, query)];
      for (let next = pages[0].next; next; next = pages.at(-1)!.next) {
        pages.push(await api.list(user, new URL(next)));
        expect(pages.length, 'pages').toBeLessThan(1000);
      }
      return pages;
    },

    /** A new user with a project of their own ("Web Application") and two tags. */
    async setUp() {
      const user = await ctx.createUser();
      const project = await api.project(user, 'Web Application');
      const frontend = await api.tag(user, 'frontend');
      const development = await api.tag(user, 'development');
      return { user, project, frontend, development };
    },

    /** Runs a request that must be refused with `status`, and checks that the user's rows did not change. */
    async refused(user: TestUser, request: () => PromiseLike<{ status: number; body: unknown }>, status: number) {
      const before = await api.snapshot(user.id);
      const res = await request();
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(await api.snapshot(user.id)).toEqual(before);
      return res.body as Record<string, unknown>;
    },

    /**
     * Everything the database holds for the user's entries: the entries, their tag links and idle
     * periods. Equal before and after a refused request shows that it changed nothing.
     */
    async snapshot(userId: number) {
      const { db, t } = ctx.database.store;
      const entries = await db.select().from(t.timeEntries).where(eq(t.timeEntries.userId, userId)).orderBy(asc(t.timeEntries.id));
      const ids = entries.map((entry) => entry.id);
      const tags = ids.length
        ? await db.select().from(t.timeEntryTags).where(inArray(t.timeEntryTags.timeEntryId, ids))
        : [];
      const idle = ids.length
        ? await db.select().from(t.idleSessions).where(inArray(t.idleSessions.timeEntryId, ids)).orderBy(asc(t.idleSessions.id))
        : [];
      tags.sort((a, b) => a.timeEntryId - b.timeEntryId || a.tagId - b.tagId);
      return { entries, tags, idle };
    },
  };
  return api;
}

/**
 * The order the list must show `entries` in for `ordering`, computed here from what the entries
 * say: the field's value, then id, both in the ordering's direction. A running entry has no end and
 * no duration; it sorts after every finished one by end_time and duration ascending. Titles and
 * project names are compared by code unit (use ASCII of one case, so that no collation differs).
 * An entry whose project was deleted has the empty name.
 */
export function expectedOrder(entries: TimeEntry[], ordering: string): number[] {
  const descending = ordering.startsWith('-');
  const field = descending ? ordering.slice(1) : ordering;
  const key = (entry: TimeEntry): number | string => {
    switch (field) {
      case 'start_time':
        return Date.parse(entry.start_time);
      case 'end_time':
        return entry.end_time === null ? Number.POSITIVE_INFINITY : Date.parse(entry.end_time);
      case 'duration':
        return entry.duration === null ? Number.POSITIVE_INFINITY : secondsOf(entry.duration);
      case 'title':
        return entry.title;
      case 'project_name':
        return entry.project ?? '';
      case 'is_active':
        return entry.is_active ? 1 : 0;
      default:
        throw new Error(`no such ordering: ${ordering}`);
    }
  };
  const compare = (a: TimeEntry, b: TimeEntry) => {
    const [ka, kb] = [key(a), key(b)];
    const byKey = ka < kb ? -1 : ka > kb ? 1 : 0;
    return byKey || a.id - b.id;
  };
  const sorted = [...entries].sort(compare).map((entry) => entry.id);
  return descending ? sorted.reverse() : sorted;
}

/** A cursor as the server makes them (base64url JSON), for tampering. */
export const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
export const decodeCursor = (cursor: string): unknown => JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));

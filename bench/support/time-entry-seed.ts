// Seeding for the time-entries benchmark: one heavy user with a very long history and many light
// users with a short one, written straight into a fresh store (bulk inserts, not the API).
//
// The entries are generated deterministically (a seeded PRNG) so that every run and both dialects
// hold the same data: start times spread over years (mostly in order, some exact ties, some entries
// recorded after the fact at an earlier time), durations of a minute to a few hours (a few long
// ones), a mix of projects (and none), a few tags, repeated titles. The heavy user's newest entry is
// running. Ids are given explicitly (the tags of a chunk need them); on Postgres the identity is
// moved past them afterwards so that the API's own inserts still work.
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Store } from '../../db/open-database';
import { hashPassword } from '../../server/auth/passwords';
import { newToken } from '../../server/auth/tokens';

export interface SeedOptions {
  heavyEntries: number;
  lightUsers: number;
  lightEntries: number;
  /** Entries generated and written at a time. */
  chunk: number;
  /**
   * How the entries are written. `insertAll`: Store.insertAll per chunk (one transaction each, in
   * 500-row drizzle INSERTs). `bulk` (Postgres only): the same rows as one `INSERT … SELECT FROM
   * unnest()` of column arrays per 500 rows, each its own transaction (see writeUnnest). Both go
   * through the tables' triggers like any insert. (On SQLite a prepared INSERT per row was no faster
   * than insertAll: the indexes and the trigger are most of the time.)
   */
  writer: 'insertAll' | 'bulk';
  /** Called after each chunk with the entries written so far. */
  progress?: (written: number, total: number) => void;
}

export interface SeededUser {
  id: number;
  username: string;
  token: string;
}

export interface Seeded {
  heavy: SeededUser;
  light: SeededUser[];
  /** The heavy user's projects (all owned by them) and tags. */
  heavyProjects: number[];
  heavyTags: number[];
  entries: number;
  tagLinks: number;
  /** The span of the heavy user's (finished) start times. */
  firstStart: Date;
  lastStart: Date;
  /** Users, tokens, projects and tags. */
  setupMs: number;
  /** time_entries and time_entry_tags (through the per-row count trigger). */
  entriesMs: number;
  /** Postgres: VACUUM ANALYZE afterwards (what autovacuum does to a table in use); 0 on SQLite. */
  vacuumMs: number;
}

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const YEARS = 6;

const WORDS = ['Code review', 'Standup', 'Planning', 'Bug fix', 'Support', 'Design', 'Write docs', 'Deploy', 'Research', 'Interviews'];
const HEAVY_PROJECTS = 8;
const HEAVY_TAGS = 6;
const LIGHT_TAGS = 3;

/** mulberry32: a small deterministic PRNG, [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type EntryRow = Store['t']['timeEntries']['$inferInsert'];
type TagLink = Store['t']['timeEntryTags']['$inferInsert'];

/** A duration in seconds: mostly under 2 h, up to about 4 h, and a few long days. */
function durationSeconds(random: () => number): number {
  if (random() < 0.005) return 8 * 3600 + Math.floor(random() * 4 * 3600);
  const r = random();
  return 60 + Math.floor(r * r * 4 * 3600);
}

function titleOf(random: () => number): string {
  return `${WORDS[Math.floor(random() * WORDS.length)]} ${Math.floor(random() * 20)}`;
}

/** The project of an entry: 15% none, the rest skewed towards the first projects. */
function projectOf(random: () => number, projects: number[]): number | null {
  if (projects.length === 0 || random() < 0.15) return null;
  const r = random();
  return projects[Math.floor(r * r * projects.length)];
}

/** 10% of entries carry one tag, 3% two. */
function tagsOf(random: () => number, tags: number[]): number[] {
  const r = random();
  if (tags.length === 0 || r >= 0.13) return [];
  const first = tags[Math.floor(random() * tags.length)];
  if (r < 0.1 || tags.length < 2) return [first];
  let second = first;
  while (second === first) second = tags[Math.floor(random() * tags.length)];
  return [first, second];
}

export async function seedTimeEntries(store: Store, options: SeedOptions): Promise<Seeded> {
  const { db, t } = store;
  const setupStarted = performance.now();
  const now = Date.now();
  const createdAt = new Date(now);
  // One scrypt hash for everybody: these users never log in (they have tokens).
  const passwordHash = await hashPassword('bench password that nobody types');
  const prefix = `tebench${now.toString(36)}`;
  const heavyName = `${prefix}_heavy`;
  const lightNames = Array.from({ length: options.lightUsers }, (_, i) => `${prefix}_light${i}`);
  await store.insertAll(
    t.users,
    [heavyName, ...lightNames].map((username) => ({ username, passwordHash, firstName: 'Bench', lastName: username, isAdmin: false, createdAt })),
  );
  const userRows = await db.select({ id: t.users.id, username: t.users.username }).from(t.users).where(sql`${t.users.username} like ${prefix + '%'}`);
  const idOf = new Map(userRows.map((row) => [row.username, row.id]));
  const user = (username: string): SeededUser => {
    const id = idOf.get(username);
    if (id === undefined) throw new Error(`seeded user ${username} not found`);
    return { id, username, token: '' };
  };
  const heavy = user(heavyName);
  const light = lightNames.map(user);
  const tokenRows = [heavy, ...light].map((u) => {
    const { token, digest } = newToken();
    u.token = token;
    return { userId: u.id, digest, createdAt };
  });
  await store.insertAll(t.authTokens, tokenRows);

  // Projects: the heavy user owns HEAVY_PROJECTS, each light user one (owners are members).
  const projectOwners = [...Array.from({ length: HEAVY_PROJECTS }, () => heavy.id), ...light.map((u) => u.id)];
  await store.insertAll(
    t.projects,
    projectOwners.map((ownerId, i) => ({ title: `${prefix} project ${i}`, description: '', ownerId, createdAt })),
  );
  const projectRows = await db
    .select({ id: t.projects.id, ownerId: t.projects.ownerId })
    .from(t.projects)
    .where(sql`${t.projects.title} like ${prefix + '%'}`)
    .orderBy(t.projects.id);
  const projectsOf = new Map<number, number[]>();
  for (const row of projectRows) projectsOf.set(row.ownerId, [...(projectsOf.get(row.ownerId) ?? []), row.id]);
  await store.insertAll(
    t.projectMembers,
    projectRows.map((row) => ({ projectId: row.id, userId: row.ownerId, createdAt })),
  );

  const tagTitles = ['billable', 'urgent', 'meeting', 'internal', 'client-a', 'client-b'];
  await store.insertAll(t.tags, [
    ...tagTitles.slice(0, HEAVY_TAGS).map((title) => ({ userId: heavy.id, title, createdAt })),
    ...light.flatMap((u) => tagTitles.slice(0, LIGHT_TAGS).map((title) => ({ userId: u.id, title, createdAt }))),
  ]);
  const tagRows = await db.select({ id: t.tags.id, userId: t.tags.userId }).from(t.tags).orderBy(t.tags.id);
  const tagsOfUser = new Map<number, number[]>();
  for (const row of tagRows) tagsOfUser.set(row.userId, [...(tagsOfUser.get(row.userId) ?? []), row.id]);
  const setupMs = performance.now() - setupStarted;

  // Entries. Ids continue after any there are (a fresh database: from 1).
  const entriesStarted = performance.now();
  const [{ maxId }] = await db.select({ maxId: sql<number | null>`max(${t.timeEntries.id})` }).from(t.timeEntries);
  let nextId = Number(maxId ?? 0) + 1;
  const spanEnd = now - DAY;
  const spanStart = spanEnd - YEARS * 365 * DAY;
  const total = options.heavyEntries + options.lightUsers * options.lightEntries;
  let written = 0;
  let tagLinks = 0;
  const random = prng(20261126);

  if (options.writer === 'bulk' && store.dialect !== 'postgres') throw new Error('the bulk writer is for Postgres');
  const flush = async (rows: EntryRow[], links: TagLink[]) => {
    if (options.writer === 'bulk') {
      await writeUnnest(store, rows, links);
    } else {
      await store.insertAll(t.timeEntries, rows);
      if (links.length > 0) await store.insertAll(t.timeEntryTags, links);
    }
    written += rows.length;
    tagLinks += links.length;
    options.progress?.(written, total);
  };

  const heavyProjects = projectsOf.get(heavy.id) ?? [];
  const heavyTags = tagsOfUser.get(heavy.id) ?? [];
  const step = (spanEnd - spanStart) / options.heavyEntries;
  let previousStart = spanStart;
  let firstStart = Number.POSITIVE_INFINITY;
  let lastStart = Number.NEGATIVE_INFINITY;
  let rows: EntryRow[] = [];
  let links: TagLink[] = [];
  for (let i = 0; i < options.heavyEntries; i++) {
    const running = i === options.heavyEntries - 1;
    const r = random();
    let start: number;
    if (running) start = now - 30 * 60 * SECOND;
    else if (r < 0.02 && i > 0) start = previousStart; // an exact tie with the entry before
    else if (r < 0.04) start = spanStart + Math.floor(random() * (spanEnd - spanStart)); // recorded after the fact
    else start = Math.floor(spanStart + i * step + random() * step * 0.9);
    previousStart = start;
    if (!running) {
      firstStart = Math.min(firstStart, start);
      lastStart = Math.max(lastStart, start);
    }
    const id = nextId++;
    rows.push({
      id,
      userId: heavy.id,
      projectId: projectOf(random, heavyProjects),
      title: titleOf(random),
      description: random() < 0.3 ? 'worked on it' : '',
      startTime: new Date(start),
      endTime: running ? null : new Date(start + durationSeconds(random) * SECOND),
      idleSeconds: 0,
      createdAt: new Date(start),
    });
    for (const tagId of tagsOf(random, heavyTags)) links.push({ timeEntryId: id, tagId });
    if (rows.length >= options.chunk) {
      await flush(rows, links);
      rows = [];
      links = [];
    }
  }
  for (const u of light) {
    const projects = projectsOf.get(u.id) ?? [];
    const tags = tagsOfUser.get(u.id) ?? [];
    for (let i = 0; i < options.lightEntries; i++) {
      const start = spanStart + Math.floor(random() * (spanEnd - spanStart));
      const id = nextId++;
      rows.push({
        id,
        userId: u.id,
        projectId: projectOf(random, projects),
        title: titleOf(random),
        description: '',
        startTime: new Date(start),
        endTime: new Date(start + durationSeconds(random) * SECOND),
        idleSeconds: 0,
        createdAt: new Date(start),
      });
      for (const tagId of tagsOf(random, tags)) links.push({ timeEntryId: id, tagId });
    }
    if (rows.length >= options.chunk) {
      await flush(rows, links);
      rows = [];
      links = [];
    }
  }
  if (rows.length > 0) await flush(rows, links);
  if (store.dialect === 'postgres') {
    // Explicit ids leave the identity behind: move it past them, as a restore would.
    await db.execute(sql`select setval(pg_get_serial_sequence('time_entries', 'id'), (select max(id) from time_entries))`);
  }
  const entriesMs = performance.now() - entriesStarted;

  const vacuumStarted = performance.now();
  if (store.dialect === 'postgres') await db.execute(sql`vacuum analyze`);
  const vacuumMs = store.dialect === 'postgres' ? performance.now() - vacuumStarted : 0;

  return {
    heavy,
    light,
    heavyProjects,
    heavyTags,
    entries: written,
    tagLinks,
    firstStart: new Date(firstStart),
    lastStart: new Date(lastStart),
    setupMs,
    entriesMs,
    vacuumMs,
  };
}

/** Rows per unnest INSERT, and so per transaction, on Postgres. */
const UNNEST_ROWS = 500;

/**
 * Postgres: the rows as column arrays, one `INSERT … SELECT FROM unnest(…)` per UNNEST_ROWS rows
 * (autocommit: each its own transaction), the tag links after them.
 *
 * Why not Store.insertAll: drizzle's 500-row VALUES statements (4,500 parameters each) wrote about
 * 3,000 rows/s here, 5–6 minutes for a million. And why not bigger transactions: the per-row
 * trigger that keeps time_entry_counts updates the same counter row once per inserted entry, and on
 * Postgres each of those updates leaves a row version that the next one must step over until the
 * transaction ends, so a transaction of n entries for one user costs O(n²) (50,000 in one
 * statement: 62 s with the trigger, 2.2 s without). 500 rows per transaction keeps that small.
 */
async function writeUnnest(store: Store, rows: EntryRow[], links: TagLink[]): Promise<void> {
  const perStatement = UNNEST_ROWS;
  const client = (store.db as unknown as { $client: pg.Pool }).$client;
  const iso = (time: Date | null | undefined) => (time ? time.toISOString() : null);
  for (let from = 0; from < rows.length; from += perStatement) {
    const part = rows.slice(from, from + perStatement);
    await client.query(
      `insert into time_entries (id, user_id, project_id, title, description, start_time, end_time, idle_seconds, created_at)
       select * from unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::timestamptz[])`,
      [
        part.map((row) => row.id),
        part.map((row) => row.userId),
        part.map((row) => row.projectId ?? null),
        part.map((row) => row.title),
        part.map((row) => row.description),
        part.map((row) => iso(row.startTime)),
        part.map((row) => iso(row.endTime)),
        part.map((row) => row.idleSeconds),
        part.map((row) => iso(row.createdAt)),
      ],
    );
  }
  for (let from = 0; from < links.length; from += 5000) {
    const part = links.slice(from, from + 5000);
    await client.query('insert into time_entry_tags (time_entry_id, tag_id) select * from unnest($1::int[], $2::int[])', [
      part.map((link) => link.timeEntryId),
      part.map((link) => link.tagId),
    ]);
  }
}


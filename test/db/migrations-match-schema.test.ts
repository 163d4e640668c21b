import { generateDrizzleJson, generateMigration, pushSQLiteSchema } from 'drizzle-kit/api';
import { sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Store } from '../../db/open-database';
import * as pgTables from '../../db/schema/pg';
import * as sqliteTables from '../../db/schema/sqlite';
import { createEmptyPostgresDatabase, createTestDatabase, POSTGRES_URL, withPgClient, type TestDatabase } from '../support/databases';

// A database built by the migrations, as the server builds it, must have exactly the tables,
// columns, keys, defaults and indexes that db/schema declares.
//
// On SQLite, drizzle-kit is asked what its push would change to make it so, and must find nothing.
// On Postgres its push cannot be asked: it crashes on this schema (drizzle-team/drizzle-orm#5557,
// it drops the parameters of its composite-primary-key query), and it does not compare a partial
// index's WHERE, an index's expressions or a generated column's expression, which are what
// migrations written by hand touch. So there a second database is built from the schema alone, by
// the SQL drizzle-kit generates for it, and Postgres's own description of the two (its catalogs)
// must be the same.

describe('migrations applied to a new database [sqlite]', () => {
  const database = migratedDatabase('sqlite');

  it('build exactly the schema db/schema/sqlite.ts declares', async () => {
    const statements = await sqliteChangesToMatchSchema(database().store);
    expect(statements, driftReport('db/schema/sqlite.ts', statements)).toEqual([]);
  });
});

describe.skipIf(!POSTGRES_URL)('migrations applied to a new database [postgres]', () => {
  const migrated = migratedDatabase('postgres');
  const declared = databaseBuiltFromSchema();

  it('build exactly the schema db/schema/pg.ts declares', async () => {
    const [fromMigrations, fromSchema] = await Promise.all([pgCatalog(migrated().url), pgCatalog(declared().url)]);
    expect(fromMigrations, catalogDriftReport('db/schema/pg.ts', fromMigrations, fromSchema)).toEqual(fromSchema);
  });
});

/** A throw-away database of the describe block's own, migrated as it is opened, dropped after it. */
function migratedDatabase(dialect: TestDatabase['dialect']): () => TestDatabase {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(() => database?.drop());
  return () => database;
}

const WHAT_TO_DO =
  'Add a migration with `npm run db:generate`, or, if a migration written by hand drifted from the schema, correct whichever of the two is wrong.';

function driftReport(schemaFile: string, statements: string[]): string {
  return [
    `the migrations do not build the schema that ${schemaFile} declares; to make the migrated database match it, drizzle-kit would run:`,
    ...statements.map((statement) => `  ${statement}`),
    WHAT_TO_DO,
  ].join('\n');
}

/**
 * What drizzle-kit's push would run on the migrated SQLite database, less the rebuilds that its
 * introspection makes up (see rebuildOfWhatIsThere).
 */
async function sqliteChangesToMatchSchema(store: Store): Promise<string[]> {
  // At run time the SQLite store's `db` is better-sqlite3's. drizzle-kit's signature asks for libsql's,
  // but all it calls is all() and run(), which this one has too.
  const db = store.db as unknown as BetterSQLite3Database;
  const { statementsToExecute } = await pushedQuietly('db/schema/sqlite.ts', () =>
    pushSQLiteSchema(sqliteTables, db as unknown as Parameters<typeof pushSQLiteSchema>[1]),
  );
  const written = new Map(db.all<{ name: string; sql: string }>(sql`select name, sql from sqlite_master where sql is not null`).map((row) => [row.name, row.sql]));
  const madeUp = statementsToExecute.flatMap((statement) => rebuildOfWhatIsThere(statement, written));
  return statementsToExecute.filter((statement) => !madeUp.includes(statement));
}

/**
 * drizzle-kit's SQLite introspection misreads two kinds of object, and so proposes to drop and
 * re-create them however exactly the database has them: a partial index (it does not read the
 * WHERE clause) and a generated column whose expression holds parentheses (it cuts the expression
 * at the first ')'). For a statement that re-creates one of those word for word as the database
 * already has it (`written`: sqlite_master's CREATE statements by name), the two statements that
 * drop and re-create it; for any other, none, so that a real difference (another predicate,
 * another expression) still shows.
 */
function rebuildOfWhatIsThere(statement: string, written: Map<string, string>): string[] {
  const partialIndex = /^CREATE (?:UNIQUE )?INDEX `([^`]+)` .* WHERE .*;$/s.exec(statement);
  if (partialIndex && written.get(partialIndex[1]) === statement.slice(0, -1)) return [`DROP INDEX \`${partialIndex[1]}\`;`, statement];
  const generatedColumn = /^ALTER TABLE `([^`]+)` ADD (`([^`]+)` .* GENERATED ALWAYS AS .*);$/s.exec(statement);
  if (generatedColumn && declaresColumn(written.get(generatedColumn[1]) ?? '', generatedColumn[2])) {
    return [`ALTER TABLE \`${generatedColumn[1]}\` DROP COLUMN \`${generatedColumn[3]}\`;`, statement];
  }
  return [];
}

/**
 * Whether a CREATE TABLE statement defines a column exactly so. SQLite keeps the statement as
 * written, with the definitions of the columns that ALTER TABLE added since spliced into its list;
 * a definition there sits between '(' or ',' and ',' or ')'.
 */
function declaresColumn(createTable: string, definition: string): boolean {
  return new RegExp(`[(,]\\s*${definition.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*[,)]`).test(createTable);
}

/**
 * Runs a drizzle-kit push without its progress spinner on stdout, and without its questions: when
 * it would ask one (is the column missing here the one added there, renamed?), it finds no
 * terminal (vitest's workers have none) and rejects instead of waiting for an answer, which this
 * turns into what to do.
 */
async function pushedQuietly<T>(schemaFile: string, push: () => Promise<T>): Promise<T> {
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return await push();
  } catch (error) {
    if (!String(error).includes('Interactive prompts require a TTY')) throw error;
    const message = `the migrations do not build the schema that ${schemaFile} declares: a table or column is in one and not in the other, and drizzle-kit would ask whether it was renamed. ${WHAT_TO_DO}`;
    throw new Error(message, { cause: error });
  } finally {
    write.mockRestore();
  }
}

/**
 * A throw-away Postgres database of the describe block's own, holding what db/schema/pg.ts
 * declares and nothing else: built by the statements drizzle-kit generates to go from no schema
 * to that one, in their order. Dropped after the block.
 */
function databaseBuiltFromSchema(): () => { url: string } {
  let database: Awaited<ReturnType<typeof createEmptyPostgresDatabase>>;
  beforeAll(async () => {
    database = await createEmptyPostgresDatabase();
    await withPgClient(database.url, async (client) => {
      for (const statement of await statementsCreatingPgSchema()) await client.query(statement);
    });
  });
  afterAll(() => database?.drop());
  return () => database;
}

async function statementsCreatingPgSchema(): Promise<string[]> {
  const nothing = generateDrizzleJson({});
  return generateMigration(nothing, generateDrizzleJson(pgTables, nothing.id));
}

/** A table as Postgres describes it: each column, constraint and index by name, as one line of text. */
interface TableShape {
  columns: Record<string, string>;
  constraints: Record<string, string>;
  indexes: Record<string, string>;
}

/** The tables of the `public` schema by name. */
type Catalog = Record<string, TableShape>;

/**
 * The tables of the `public` schema as Postgres itself describes them, in its own words (types by
 * format_type, expressions by pg_get_expr, constraints by pg_get_constraintdef, indexes by
 * pg_get_indexdef), so that two databases built by different SQL compare by what they are, not by
 * how their SQL was written. drizzle's bookkeeping is in the `drizzle` schema, so not read here.
 *
 * Left out on purpose: triggers and functions (0003_time_entry_counts adds some; a drizzle schema
 * cannot declare them, so the database built from the schema never has them), and sequences as
 * objects — an identity column's sequence is compared through the column (see columnLine), its
 * name is not, being Postgres's or drizzle-kit's choice and nothing the code uses. Column order is
 * not compared either: a migration can only add a column at the end, and nothing reads by position.
 */
async function pgCatalog(url: string): Promise<Catalog> {
  return withPgClient(url, async (client) => {
    const catalog: Catalog = {};
    const tableOf = (name: string) => (catalog[name] ??= { columns: {}, constraints: {}, indexes: {} });
    for (const row of await rowsOf<ColumnRow>(client, COLUMNS)) tableOf(row.table).columns[row.name] = columnLine(row);
    for (const row of await rowsOf<DefinitionRow>(client, CONSTRAINTS)) tableOf(row.table).constraints[row.name] = row.definition;
    for (const row of await rowsOf<DefinitionRow>(client, INDEXES)) tableOf(row.table).indexes[row.name] = row.definition;
    return catalog;
  });
}

async function rowsOf<Row extends pg.QueryResultRow>(client: pg.Client, query: string): Promise<Row[]> {
  return (await client.query<Row>(query)).rows;
}

interface ColumnRow {
  table: string;
  name: string;
  type: string;
  not_null: boolean;
  /** pg_attrdef's expression: the column's default, or what it is generated from when it is generated. */
  expression: string | null;
  /** Stored, or (Postgres 18) virtual. */
  generated: '' | 's' | 'v';
  identity: '' | 'a' | 'd';
  /** The identity's sequence, when it has one: its type and numbers (pg_sequence's columns). */
  sequence: string | null;
}

interface DefinitionRow {
  table: string;
  name: string;
  definition: string;
}

const PUBLIC_TABLE = `c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')`;

const COLUMNS = `
  select c.relname as table, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
    a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as expression,
    a.attgenerated as generated, a.attidentity as identity,
    format('%s, start %s, increment %s, min %s, max %s, cache %s%s', s.seqtypid::regtype, s.seqstart,
      s.seqincrement, s.seqmin, s.seqmax, s.seqcache, case when s.seqcycle then ', cycle' else '' end) as sequence
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
  left join pg_sequence s on a.attidentity <> '' and s.seqrelid = pg_get_serial_sequence(c.oid::regclass::text, a.attname)::regclass
  where ${PUBLIC_TABLE}
  order by c.relname, a.attname`;

// Every constraint of a table: keys (primary, unique, foreign) and checks. Not the NOT NULL ones
// that Postgres 18 lists here too (contype 'n'): the column's line says not null already, and their
// names are Postgres's own, kept when a column is renamed.
const CONSTRAINTS = `
  select c.relname as table, k.conname as name, pg_get_constraintdef(k.oid) as definition
  from pg_constraint k join pg_class c on c.oid = k.conrelid
  where ${PUBLIC_TABLE} and k.contype <> 'n'
  order by c.relname, k.conname`;

// pg_get_indexdef carries an index's method, columns, expressions and partial predicate. The index
// behind a primary key or unique constraint is left to that constraint, so as not to tell of one
// difference twice.
const INDEXES = `
  select c.relname as table, i.relname as name, pg_get_indexdef(x.indexrelid) as definition
  from pg_index x join pg_class c on c.oid = x.indrelid join pg_class i on i.oid = x.indexrelid
  where ${PUBLIC_TABLE}
    and not exists (select from pg_constraint k where k.conindid = x.indexrelid and k.conrelid = x.indrelid and k.contype in ('p', 'u', 'x'))
  order by c.relname, i.relname`;

/** A column in one line: `integer not null generated by default as identity (integer, start 1, …)`. */
function columnLine(column: ColumnRow): string {
  const parts = [column.type];
  if (column.not_null) parts.push('not null');
  if (column.generated !== '') parts.push(`generated always as (${column.expression}) ${column.generated === 's' ? 'stored' : 'virtual'}`);
  else if (column.expression !== null) parts.push(`default ${column.expression}`);
  if (column.identity !== '') parts.push(`generated ${column.identity === 'a' ? 'always' : 'by default'} as identity (${column.sequence})`);
  return parts.join(' ');
}

interface Difference {
  /** `table "users", column "username"`. */
  what: string;
  /** The object in the migrated database, undefined when it has none. */
  migrated: string | undefined;
  /** The object in the database built from the schema, undefined when it has none. */
  declared: string | undefined;
}

const KINDS = { columns: 'column', constraints: 'constraint', indexes: 'index' } as const;

function catalogDriftReport(schemaFile: string, migrated: Catalog, declared: Catalog): string {
  const described = (object: string | undefined) => object ?? '(none)';
  return [
    `the migrations do not build the schema that ${schemaFile} declares:`,
    ...differences(migrated, declared).map(
      (difference) => `  ${difference.what}\n    migrated: ${described(difference.migrated)}\n    schema:   ${described(difference.declared)}`,
    ),
    WHAT_TO_DO,
    'In the diff below, - is the schema and + the migrations.',
  ].join('\n');
}

/** What differs: a table that only one side has, as a whole; in a table both have, each object. */
function differences(migrated: Catalog, declared: Catalog): Difference[] {
  return namesInEither(migrated, declared).flatMap((table) => {
    const [inMigrated, inDeclared] = [migrated[table], declared[table]];
    if (!inMigrated || !inDeclared) return [{ what: `table "${table}"`, migrated: tableLine(inMigrated), declared: tableLine(inDeclared) }];
    return (Object.keys(KINDS) as (keyof typeof KINDS)[]).flatMap((kind) =>
      namesInEither(inMigrated[kind], inDeclared[kind])
        .filter((name) => inMigrated[kind][name] !== inDeclared[kind][name])
        .map((name) => ({ what: `table "${table}", ${KINDS[kind]} "${name}"`, migrated: inMigrated[kind][name], declared: inDeclared[kind][name] })),
    );
  });
}

function tableLine(table: TableShape | undefined): string | undefined {
  return table && `a table of columns ${Object.keys(table.columns).join(', ')}`;
}

function namesInEither(one: object, other: object): string[] {
  return [...new Set([...Object.keys(one), ...Object.keys(other)])].sort();
}

import { getTableConfig as pgConfig } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteConfig } from 'drizzle-orm/sqlite-core';
import { describe, expect, it } from 'vitest';
import * as pgTables from '../../db/schema/pg';
import * as sqliteTables from '../../db/schema/sqlite';

// Query code is written once for both dialects, so the two schemas must declare the same tables,
// columns (name, nullability, primary key) and indexes.
const shape = (config: ReturnType<typeof pgConfig> | ReturnType<typeof sqliteConfig>) => ({
  name: config.name,
  columns: config.columns.map((column) => [column.name, column.notNull, column.primary]).sort(),
  primaryKeys: config.primaryKeys.map((key) => key.columns.map((column) => column.name)),
  indexes: config.indexes.map((index) => index.config.name).sort(),
  foreignKeys: config.foreignKeys.map((key) => key.reference().columns.map((column) => column.name)).sort(),
  uniques: config.columns.filter((column) => column.isUnique).map((column) => column.name),
});

describe('db schemas', () => {
  it('declare the same tables for Postgres and SQLite', () => {
    expect(Object.keys(sqliteTables).sort()).toEqual(Object.keys(pgTables).sort());
  });

  it.each(Object.keys(pgTables))('declare %s alike', (name) => {
    const pg = pgTables[name as keyof typeof pgTables];
    const sqlite = sqliteTables[name as keyof typeof sqliteTables];
    expect(shape(sqliteConfig(sqlite))).toEqual(shape(pgConfig(pg)));
  });
});

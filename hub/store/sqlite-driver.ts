/**
 * The embedded SQLite engine of whichever runtime runs the hub: node:sqlite on
 * Node, bun:sqlite on Bun. Both expose the same few calls the store needs.
 */
import { chmodSync, closeSync, openSync } from "node:fs";

export interface SqliteStatement {
  run(...params: Array<string | number | null>): unknown;
  all(...params: Array<string | number | null>): unknown[];
}

export interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}

interface SqliteModule {
  DatabaseSync?: new (path: string) => SqliteDatabase;
  Database?: new (path: string, options?: { create?: boolean }) => SqliteDatabase;
}

/** node:sqlite warns that it is experimental on every start; that line is noise in a hub's output. */
async function importQuietly(specifier: string): Promise<SqliteModule> {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes("SQLite is an experimental feature")) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return (await import(specifier)) as SqliteModule;
  } finally {
    process.emitWarning = emitWarning;
  }
}

export function isBun(): boolean {
  return typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
}

export async function openSqlite(path: string): Promise<SqliteDatabase> {
  // A computed specifier: TypeScript on Node has no types for bun:sqlite.
  const specifier = isBun() ? "bun:sqlite" : "node:sqlite";
  const mod = await importQuietly(specifier);
  // Created 0600 up front: SQLite gives its -wal and -shm files the same mode as the database.
  closeSync(openSync(path, "a", 0o600));
  chmodSync(path, 0o600);
  if (mod.Database) return new mod.Database(path, { create: true });
  if (mod.DatabaseSync) return new mod.DatabaseSync(path);
  throw new Error(`no SQLite engine in ${specifier}`);
}

/**
 * The embedded SQLite engine of whichever runtime runs the hub: node:sqlite on
 * Node, bun:sqlite on Bun. Both expose the same few calls the store needs.
 */
import { closeSync } from "node:fs";
import { openPrivateFile, refuseSymlink } from "../../lib/private-fs.ts";

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
  // SQLite follows symlinks (and creates a dangling one's target), so the database and the
  // siblings it makes are checked first; the directory is private and ours, so nothing else can
  // plant one between this check and SQLite's open. Created 0600 up front: SQLite gives its -wal
  // and -shm files the same mode as the database.
  for (const suffix of ["-wal", "-shm", "-journal"]) refuseSymlink(path + suffix);
  closeSync(openPrivateFile(path, "readwrite"));
  if (mod.Database) return new mod.Database(path, { create: true });
  if (mod.DatabaseSync) return new mod.DatabaseSync(path);
  throw new Error(`no SQLite engine in ${specifier}`);
}

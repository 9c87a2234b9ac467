/**
 * Files that only the user may read: directories 0700, files 0600, written
 * atomically (temp file + rename) so a reader never sees half a file.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Create (recursively) and tighten a directory to 0700. */
export function ensurePrivateDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  // mkdir's mode is masked by the umask and leaves existing dirs alone.
  if ((statSync(path).mode & 0o777) !== 0o700) chmodSync(path, 0o700);
  return path;
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  ensurePrivateDir(dirname(path));
  const tmp = join(dirname(path), `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: "wx" });
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The parsed file, or undefined when it is missing or not JSON (a crashed writer, a stray file). */
export function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * Files that only the user may read: directories 0700, files 0600, written
 * atomically (temp file + rename) so a reader never sees half a file.
 *
 * No symbolic link is ever followed for a file or directory pi-coms creates
 * or opens: a planted link would otherwise let someone redirect a log, a
 * database or a chmod to a file of their choosing. Directories are opened
 * with O_NOFOLLOW and checked (a real directory owned by this user) before
 * anything is tightened; the chmod then goes through that same descriptor,
 * so nothing can be swapped in between. Path prefixes the user chose
 * (PI_COMS_DIR, TMPDIR, a home on a symlinked volume) may contain links; only
 * what pi-coms itself creates below them is held to this.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const { O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_CREAT, O_NOFOLLOW, O_DIRECTORY } = constants;

/** Why a path was refused: always names it, so the user can look. */
export class UnsafePathError extends Error {
  readonly path: string;
  constructor(path: string, why: string) {
    super(`refusing to use ${path}: ${why}`);
    this.name = "UnsafePathError";
    this.path = path;
  }
}

function myUid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

/** Open without following a final symlink, turning ELOOP into a refusal that names the path. */
function openNoFollow(path: string, flags: number, mode?: number): number {
  try {
    return openSync(path, flags | O_NOFOLLOW, mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "EMLINK") throw new UnsafePathError(path, "it is a symbolic link");
    if (code === "ENOTDIR" && (flags & O_DIRECTORY) !== 0) {
      throw new UnsafePathError(path, isSymlink(path) ? "it is a symbolic link" : "it is not a directory");
    }
    throw error;
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function checkOwned(path: string, stats: Stats, kind: "directory" | "file"): void {
  if (kind === "directory" ? !stats.isDirectory() : !stats.isFile()) {
    throw new UnsafePathError(path, `it is not a regular ${kind}`);
  }
  const uid = myUid();
  if (uid !== undefined && stats.uid !== uid) {
    throw new UnsafePathError(path, `it belongs to uid ${stats.uid}, not to this user (uid ${uid})`);
  }
}

/** A directory component: created 0700 if missing, then proven a real directory of ours; tightened if asked. */
function ownDir(path: string, tighten: boolean): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const fd = openNoFollow(path, O_RDONLY | O_DIRECTORY);
  try {
    const stats = fstatSync(fd);
    checkOwned(path, stats, "directory");
    // mkdir's mode is masked by the umask and leaves existing dirs alone.
    if (tighten && (stats.mode & 0o777) !== 0o700) fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/**
 * Create (recursively) and tighten a directory to 0700. Every component below
 * `root` (default: the directory's parent) must be a real directory owned by
 * this user, never a symlink; `root` itself and above are the user's choice.
 */
export function ensurePrivateDir(path: string, root?: string): string {
  const target = resolve(path);
  let base = root === undefined ? dirname(target) : resolve(root);
  if (base === target || !target.startsWith(base.endsWith(sep) ? base : base + sep)) base = dirname(target);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const parts = relative(base, target).split(sep);
  let current = base;
  parts.forEach((part, i) => {
    current = join(current, part);
    ownDir(current, i === parts.length - 1);
  });
  return path;
}

/** Refuse a path that is a symlink (dangling or not); a missing path is fine. */
export function refuseSymlink(path: string): void {
  if (isSymlink(path)) throw new UnsafePathError(path, "it is a symbolic link");
}

/**
 * Open (creating 0600 if missing) a file of ours without following a link:
 * for appending (a log) or for reading and writing (a database created
 * before its engine opens it). An existing file is tightened to 0600.
 */
export function openPrivateFile(path: string, how: "append" | "readwrite"): number {
  const flags = how === "append" ? O_WRONLY | O_APPEND | O_CREAT : O_RDWR | O_CREAT;
  const fd = openNoFollow(path, flags, 0o600);
  try {
    const stats = fstatSync(fd);
    checkOwned(path, stats, "file");
    if ((stats.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** The text of a file, read without following a link; undefined when it is missing. */
export function readPrivateText(path: string): string | undefined {
  let fd: number;
  try {
    fd = openNoFollow(path, O_RDONLY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * Write via a fresh temp file (O_EXCL: never through an existing name) and a
 * rename, which replaces a link planted at `path` instead of writing through it.
 */
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

/**
 * The parsed file, or undefined when it is missing or not JSON (a crashed
 * writer, a stray file). A symlink is refused with an error, not read.
 */
export function readJson(path: string): unknown {
  let text: string | undefined;
  try {
    text = readPrivateText(path);
  } catch (error) {
    if (error instanceof UnsafePathError) throw error;
    return undefined;
  }
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The per-project registry of running agents on disk. One JSON entry per
 * agent, named after the agent; names are claimed with an exclusive create
 * (hard link of a finished temp file, so a reader never sees half an entry)
 * under a short-lived project lock that also serialises pruning, so two
 * sessions starting at the same moment never get the same name and a prune
 * never removes an entry that a newcomer just claimed.
 */
import { randomBytes } from "node:crypto";
import { closeSync, linkSync, lstatSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { z } from "zod";
import { AgentCard, Secret } from "../contract/schemas.ts";
import { comsDir } from "../lib/env.ts";
import { ensurePrivateDir, readPrivateText, refuseSymlink, writeFileAtomic } from "../lib/private-fs.ts";
import { pidAlive } from "../lib/process.ts";
import { agentsDir, entryPath, lockPath, projectDir } from "./paths.ts";

/** What an entry file holds: the public card plus how to reach and verify the agent. */
export const RegistryEntry = AgentCard.omit({ status: true }).extend({
  pid: z.number().int().positive(),
  socket: z.string().min(1).max(200),
  /** The per-session capability a peer presents in `agents.hello`. */
  token: Secret,
});
export type RegistryEntry = z.infer<typeof RegistryEntry>;

export function cardOf(entry: RegistryEntry): AgentCard {
  return AgentCard.parse({
    id: entry.id,
    name: entry.name,
    purpose: entry.purpose,
    model: entry.model,
    color: entry.color,
    explicit: entry.explicit,
    project: entry.project,
    context_used_pct: entry.context_used_pct,
    queue_depth: entry.queue_depth,
    status: "online",
    started_at: entry.started_at,
  });
}

/** Does something accept connections on this socket? (refused or missing → false) */
export function socketAccepts(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // slow but not refusing: treat as alive
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export async function entryAlive(entry: RegistryEntry): Promise<boolean> {
  if (!pidAlive(entry.pid)) return false;
  return socketAccepts(entry.socket);
}

export class Registry {
  readonly project: string;
  readonly dir: string;
  private readonly env: NodeJS.ProcessEnv | undefined;

  constructor(project: string, env?: NodeJS.ProcessEnv) {
    this.project = project;
    this.env = env;
    this.dir = agentsDir(project, env);
  }

  /** The agents directory, checked from PI_COMS_DIR down: no component may be a symlink. */
  ensure(): void {
    ensurePrivateDir(this.dir, comsDir(this.env));
  }

  /** Every readable entry (unreadable or half-written files are skipped, never trusted). */
  read(): RegistryEntry[] {
    let files: string[];
    try {
      files = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: RegistryEntry[] = [];
    for (const file of files) {
      if (!file.endsWith(".json") || file.startsWith(".")) continue;
      const entry = this.readFile(join(this.dir, file));
      if (entry && `${entry.name}.json` === file) out.push(entry);
    }
    return out;
  }

  byName(name: string): RegistryEntry | undefined {
    const entry = this.readFile(entryPath(this.project, name, this.env));
    return entry?.name === name ? entry : undefined;
  }

  byId(id: string): RegistryEntry | undefined {
    return this.read().find((entry) => entry.id === id);
  }

  /**
   * Claim `wanted`, or `wanted2`, `wanted3`, ... : the first name that is free
   * or whose holder is dead (then pruned). Returns the entry as written.
   */
  async claim(wanted: string, make: (name: string) => RegistryEntry): Promise<RegistryEntry> {
    this.ensure();
    return this.locked(async () => {
      for (let n = 1; n < 10_000; n++) {
        const name = n === 1 ? wanted : suffixed(wanted, n);
        const path = entryPath(this.project, name, this.env);
        const current = this.readFile(path);
        if (current && (await entryAlive(current))) continue;
        if (current) {
          rmSync(path, { force: true });
          removeStaleSocket(current.socket);
        }
        const entry = make(name);
        if (this.createExclusive(path, entry)) return entry;
      }
      throw new Error(`no free name for ${wanted}`);
    });
  }

  /** Rewrite our own entry (card changes); refuses to touch an entry that is not ours. */
  update(entry: RegistryEntry): void {
    const path = entryPath(this.project, entry.name, this.env);
    const current = this.readFile(path);
    if (current?.id !== entry.id) return;
    writeFileAtomic(path, `${JSON.stringify(entry)}\n`);
  }

  /** Remove our own entry (by id, so a namesake that took over is left alone). */
  async remove(entry: RegistryEntry): Promise<void> {
    await this.locked(async () => {
      const path = entryPath(this.project, entry.name, this.env);
      if (this.readFile(path)?.id === entry.id) rmSync(path, { force: true });
    });
  }

  /** For process exit, where nothing async runs: remove our entry if it is still ours. */
  removeSync(entry: RegistryEntry): void {
    const path = entryPath(this.project, entry.name, this.env);
    if (this.readFile(path)?.id === entry.id) rmSync(path, { force: true });
  }

  /** Drop entries whose process is gone or whose socket refuses; returns the live ones. */
  async prune(knownAlive?: (entry: RegistryEntry) => boolean): Promise<RegistryEntry[]> {
    const entries = this.read();
    const verdicts = await Promise.all(
      entries.map((entry) => (pidAlive(entry.pid) && knownAlive?.(entry)) || entryAlive(entry)),
    );
    const dead = entries.filter((_, i) => !verdicts[i]);
    if (dead.length > 0) {
      await this.locked(async () => {
        for (const entry of dead) {
          // Re-read under the lock: the name may have been claimed again meanwhile.
          const path = entryPath(this.project, entry.name, this.env);
          if (this.readFile(path)?.id === entry.id) {
            rmSync(path, { force: true });
            removeStaleSocket(entry.socket);
          }
        }
      });
    }
    return entries.filter((_, i) => verdicts[i]);
  }

  private readFile(path: string): RegistryEntry | undefined {
    let raw: string | undefined;
    try {
      // A symlinked entry is never followed: it is skipped like any unreadable one.
      raw = readPrivateText(path);
    } catch {
      return undefined;
    }
    if (raw === undefined) return undefined;
    try {
      const parsed = RegistryEntry.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Write a finished temp file, then hard-link it into place: fails if the name exists. */
  private createExclusive(path: string, entry: RegistryEntry): boolean {
    const tmp = join(this.dir, `.${randomBytes(6).toString("hex")}.tmp`);
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * A short critical section across processes: an exclusive lock file holding
   * the owner's pid. A lock whose owner died is broken; a live one is waited for.
   */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const path = lockPath(this.project, this.env);
    ensurePrivateDir(projectDir(this.project, this.env), comsDir(this.env));
    const deadline = Date.now() + 2 * STALE_LOCK_MS;
    let delay = 2;
    for (;;) {
      try {
        const fd = openSync(path, "wx", 0o600);
        try {
          writeSync(fd, String(process.pid));
        } finally {
          closeSync(fd);
        }
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        // A link where the lock goes was planted, not left by a holder: say so rather than wait.
        refuseSymlink(path);
        const owner = Number(readText(path));
        const dead = Number.isSafeInteger(owner) && owner > 0 && !pidAlive(owner);
        // The lock is held for milliseconds; one this old belongs to a reused pid or a hung process.
        if (dead || lockAge(path) > STALE_LOCK_MS) {
          rmSync(path, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new Error(`registry lock ${path} is held by pid ${owner}`);
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 50);
      }
    }
    try {
      return await fn();
    } finally {
      rmSync(path, { force: true });
    }
  }
}

/** A crashed agent leaves its socket file behind; remove it, but only if it is a socket. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) rmSync(path, { force: true });
  } catch {
    // Already gone.
  }
}

/** A registry lock older than this is broken: real holders keep it for milliseconds. */
const STALE_LOCK_MS = 15_000;

function lockAge(path: string): number {
  try {
    return Date.now() - lstatSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function readText(path: string): string {
  try {
    return readPrivateText(path) ?? "";
  } catch {
    return "";
  }
}

/** `coder` → `coder2`, keeping the result a valid name (64 characters at most). */
function suffixed(name: string, n: number): string {
  const suffix = String(n);
  return name.slice(0, 64 - suffix.length) + suffix;
}

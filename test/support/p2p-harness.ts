/**
 * Test side of the p2p-node fixture: spawn peers as child processes with a
 * shared temp PI_COMS_DIR, call them, wait for their events, and kill every
 * one of them at the end (even when a test fails).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const FIXTURE = fileURLToPath(new URL("./p2p-node.ts", import.meta.url));

export class CallError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface PeerEvent {
  event: string;
  [key: string]: unknown;
}

export class PeerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly events: PeerEvent[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly eventWaiters = new Set<() => void>();
  stderr = "";

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [FIXTURE], { env, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on("line", (line) => {
      let msg: {
        id?: number;
        ok?: boolean;
        result?: unknown;
        code?: string;
        message?: string;
        event?: string;
      };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.event) {
        this.events.push(msg as PeerEvent);
        for (const wake of this.eventWaiters) wake();
        return;
      }
      const waiter = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!waiter || msg.id === undefined) return;
      this.pending.delete(msg.id);
      if (msg.ok) waiter.resolve(msg.result);
      else waiter.reject(new CallError(msg.code ?? "?", msg.message ?? ""));
    });
    this.child.on("exit", () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`peer exited: ${this.stderr}`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** Wait (bounded) for an event matching `test`, looking at past events too. */
  async waitEvent(test: (event: PeerEvent) => boolean, timeoutMs = 10_000): Promise<PeerEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(test);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for an event; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.eventWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.eventWaiters.add(wake);
      });
    }
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.kill(signal);
    });
  }
}

/** A temp PI_COMS_DIR and HOME plus every peer started in it; `cleanup()` kills and removes all. */
export class Sandbox {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly peers: PeerProcess[] = [];

  constructor(extraEnv: NodeJS.ProcessEnv = {}) {
    // Short and real: socket paths must stay under the Unix limit.
    this.dir = realpathSync(mkdtempSync(join(tmpdir(), "pc-")));
    this.env = {
      PATH: process.env.PATH,
      HOME: join(this.dir, "home"),
      PI_COMS_DIR: join(this.dir, "coms"),
      PI_COMS_PING_INTERVAL_MS: "500",
      ...extraEnv,
    };
  }

  async peer(
    opts: Record<string, unknown>,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ proc: PeerProcess; self: { id: string; name: string }; socket: string }> {
    const proc = new PeerProcess({ ...this.env, ...env });
    this.peers.push(proc);
    const started = await proc.call<{ self: { id: string; name: string }; socket: string }>("start", {
      opts,
    });
    return { proc, ...started };
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.peers.map((peer) => peer.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Poll `check` until it returns a truthy value (bounded); no fixed sleeps in tests. */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
}

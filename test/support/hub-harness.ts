/**
 * Real hub processes for the hub tests: each test gets its own temp HOME,
 * PI_COMS_DIR and PI_COMS_NET_DIR; hubs run as child processes (`hub/cli.ts`
 * under Node or Bun) on 127.0.0.1, port 0 unless a restart needs the same
 * port; everything spawned is killed at the end, even on failure.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ComsError } from "../../contract/errors.ts";
import { ulid } from "../../contract/ids.ts";
import type { Message } from "../../contract/schemas.ts";
import { connectHub, type HubClient, type HubConnectOptions } from "../../hub/client/hub-client.ts";
import { type RedisServer, startRedis } from "./redis-server.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = join(ROOT, "hub", "cli.ts");
export const BUN = join(ROOT, "node_modules", ".bin", "bun");

export type Runtime = "node" | "bun";

export interface HubProcess {
  url: string;
  port: number;
  pid: number;
  token: string;
  project: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code once the process is gone. */
  exited: Promise<number | null>;
}

export class HubWorld {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  private readonly children = new Set<ChildProcess>();
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  private redis: Promise<RedisServer> | undefined;

  constructor(extraEnv: Record<string, string> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "pi-coms-hub-test-"));
    this.env = {
      PATH: process.env.PATH,
      HOME: join(this.dir, "home"),
      PI_COMS_DIR: join(this.dir, "coms"),
      PI_COMS_NET_DIR: join(this.dir, "coms-net"),
      ...extraEnv,
    };
  }

  /** Run later, at dispose (close clients before the hubs are killed). */
  defer(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** Start `hub/cli.ts` and wait for its "listening on" line. */
  async startHub(
    opts: { project?: string; args?: string[]; runtime?: Runtime; env?: Record<string, string> } = {},
  ): Promise<HubProcess> {
    const project = opts.project ?? "proj";
    const runtime = opts.runtime ?? "node";
    const bin = runtime === "bun" ? BUN : process.execPath;
    const args = [...(opts.args ?? []), ...(await this.storeArgs(opts.args ?? []))];
    const child = this.track(
      spawn(bin, [CLI, "--project", project, "--host", "127.0.0.1", ...args], {
        env: { ...this.env, ...opts.env },
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      out += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const url = await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode}: ${out}`);
        return /listening on (https?:\/\/\S+)/.exec(out)?.[1];
      },
      { what: "the hub to listen", timeoutMs: 20_000 },
    );
    const token = this.secret(project);
    return {
      url,
      port: Number(new URL(url).port),
      pid: child.pid as number,
      token,
      project,
      child,
      output: () => out,
      exited,
    };
  }

  /**
   * PI_COMS_TEST_HUB_STORE=redis: hubs that would use the default store run on
   * a Redis of this world instead (one redis-server per world, so a restarted
   * hub finds what the previous one stored, and worlds never share state).
   */
  private async storeArgs(args: string[]): Promise<string[]> {
    if (process.env.PI_COMS_TEST_HUB_STORE !== "redis" || args.includes("--store")) return [];
    this.redis ??= startRedis();
    return ["--store", (await this.redis).url, "--lease-ms", "1500"];
  }

  /** Run the CLI expecting it to exit; returns its exit code and output. */
  runCli(args: string[], env: Record<string, string> = {}, runtime: Runtime = "node") {
    return this.run(runtime === "bun" ? BUN : process.execPath, [CLI, ...args], { ...this.env, ...env });
  }

  /** Run any process to its exit; returns its exit code and stdout+stderr together. */
  async run(bin: string, args: string[], env: NodeJS.ProcessEnv = this.env) {
    const child = this.track(spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] }));
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      out += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    return { code, out };
  }

  /** A typed client on `hub`, closed at dispose. */
  async connect(hub: HubProcess, opts: string | HubConnectOptions): Promise<HubClient> {
    const client = await connectHub({
      url: hub.url,
      token: hub.token,
      project: hub.project,
      env: this.env,
      ...(typeof opts === "string" ? { name: opts } : opts),
    });
    this.defer(() => client.close());
    return client;
  }

  secret(project: string): string {
    const path = join(this.env.PI_COMS_NET_DIR as string, "projects", project, "server.secret.json");
    return (JSON.parse(readFileSync(path, "utf8")) as { token: string }).token;
  }

  async dispose(): Promise<void> {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // keep cleaning up
      }
    }
    for (const child of this.children) child.kill("SIGKILL");
    await (await this.redis?.catch(() => undefined))?.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Answer every inbound message with `re: <prompt>`. */
export function echo(client: HubClient): void {
  client.onInbound((message: Message) => {
    void client.settle(message.msg_id, { ok: true, text: `re: ${message.prompt}` });
  });
}

/** Kill -9 and wait until the process is gone. */
export async function kill9(hub: HubProcess): Promise<void> {
  hub.child.kill("SIGKILL");
  await hub.exited;
}

/** Send, retrying the same msg_id while the cluster fails over (what a careful sender does). */
export async function sendSurely(
  client: HubClient,
  to: string,
  prompt: string,
  msgId = ulid(),
): Promise<void> {
  for (;;) {
    try {
      await client.send({ to, prompt, msg_id: msgId });
      return;
    } catch (error) {
      if (!(error instanceof ComsError) || !["UNAVAILABLE", "PEER_GONE", "TIMEOUT"].includes(error.code))
        throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Poll `fn` until it returns something other than undefined/false; bounded, never a fixed sleep. */
export async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { what: string; timeoutMs?: number; intervalMs?: number } = { what: "condition" },
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    last = value;
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 20));
  }
  throw new Error(`timed out waiting for ${opts.what} (last: ${String(last)})`);
}

/** Raw HTTP against the hub, for what typed clients would never send. */
export async function raw(
  url: string,
  path: string,
  init: { method?: string; token?: string | null; body?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { "content-type": "application/json", ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const response = await fetch(new URL(path, url), {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return { status: response.status, text: await response.text() };
}

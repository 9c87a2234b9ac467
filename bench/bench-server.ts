/**
 * Starting and stopping the servers a bench measures (a hub, the bare relay):
 * one way for every bench, so their arms start alike.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface BenchHub {
  child: ChildProcess;
  url: string;
  token: string;
  env: NodeJS.ProcessEnv;
  dir: string;
}

/** Spawn a server that prints `listening on http://…` and wait for that line (killed when this process exits). */
export async function spawnServer(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  startupMs = 30_000,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  process.once("exit", () => child.kill("SIGKILL"));
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  const deadline = Date.now() + startupMs;
  while (!/listening on http:\/\/\S+/.test(out)) {
    if (Date.now() > deadline) throw new Error("benchmark server did not start");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { child, url: /listening on (http:\/\/\S+)/.exec(out)?.[1] as string };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
}

/** An environment whose home, hub and P2P directories all sit in `dir`, so a run leaves nothing behind. */
export function benchEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: dir,
    PI_COMS_NET_DIR: join(dir, "net"),
    PI_COMS_DIR: join(dir, "coms"),
    ...extra,
  };
}

/**
 * A hub as `pi-coms-hub --project bench` starts it, in a fresh directory named
 * `prefix…` (SQLite store); `flags` go to the runtime, `args` to the hub; `root` is
 * another checkout whose hub to start instead (a same-run baseline).
 */
export async function startBenchHub(
  runtime: "node" | "bun",
  opts: { prefix: string; args?: string[]; flags?: string[]; startupMs?: number; root?: string },
): Promise<BenchHub> {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix));
  const env = benchEnv(dir);
  const bin = runtime === "bun" ? join(ROOT, "node_modules/.bin/bun") : process.execPath;
  const { child, url } = await spawnServer(
    bin,
    [
      ...(opts.flags ?? []),
      join(opts.root ?? ROOT, "hub/cli.ts"),
      "--project",
      "bench",
      ...(opts.args ?? []),
    ],
    env,
    opts.startupMs,
  );
  const secret = readFileSync(join(dir, "net/projects/bench/server.secret.json"), "utf8");
  return { child, url, token: (JSON.parse(secret) as { token: string }).token, env, dir };
}

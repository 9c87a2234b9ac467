/**
 * Child processes for the CLI and example tests: a temp HOME with its own
 * PI_COMS_DIR and PI_COMS_NET_DIR (and no hub URL or token inherited from the
 * caller), every spawned process tracked so `killAll` can end it even on
 * failure, and a process's output collected up to its exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function isolatedHome(prefix: string): { home: string; env: NodeJS.ProcessEnv } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    PI_COMS_DIR: join(home, "coms"),
    PI_COMS_NET_DIR: join(home, "coms-net"),
  };
  delete env.PI_COMS_NET_SERVER_URL;
  delete env.PI_COMS_NET_AUTH_TOKEN;
  return { home, env };
}

export class Children {
  private readonly live = new Set<ChildProcess>();

  track(child: ChildProcess): ChildProcess {
    this.live.add(child);
    child.on("exit", () => this.live.delete(child));
    return child;
  }

  /** Run a .ts script with this Node; stdout and stderr are piped. */
  node(
    script: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    stdin: "pipe" | "ignore" = "pipe",
  ): ChildProcess {
    return this.track(spawn(process.execPath, [script, ...args], { env, stdio: [stdin, "pipe", "pipe"] }));
  }

  killAll(): void {
    for (const child of this.live) child.kill("SIGKILL");
  }
}

/** Collect the output until the process closes; kill it and fail after `timeoutMs`. */
export function finish(
  child: ChildProcess,
  opts: { label?: string; timeoutMs?: number; onStdout?: (stdout: string) => void } = {},
): Promise<Run> {
  const { label = "cli", timeoutMs = 30_000, onStdout } = opts;
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
    onStdout?.(stdout);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`${label} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Poll `probe` until it returns something other than undefined; bounded. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

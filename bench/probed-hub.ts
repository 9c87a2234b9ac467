/**
 * A hub process for the memory benches: `hub/cli.ts` with bench/soak-probe.ts
 * loaded, so the bench can read its memory figures, force a full GC or write
 * a heap snapshot over the IPC channel. SOAK_HUB_FLAGS adds Node flags.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export const MiB = 1024 * 1024;
export const mib = (bytes: number) => (bytes / MiB).toFixed(1);

/** One labelled line of memory figures. */
export function memoryLine(label: string, m: Memory, extra = ""): string {
  return (
    `${label.padEnd(16)} rss ${mib(m.rss).padStart(6)} MiB  heap used ${mib(m.heapUsed).padStart(6)} / ` +
    `${mib(m.heapTotal).padStart(6)} MiB  external ${mib(m.external).padStart(5)} MiB  ` +
    `arrayBuffers ${mib(m.arrayBuffers).padStart(5)} MiB${extra}`
  );
}

export class ProbedHub {
  readonly child: ChildProcess;
  readonly dir: string;
  url = "";
  token = "";
  private readonly project: string;
  private readonly asks = new Map<number, (reply: { memory: Memory; snapshot?: string }) => void>();
  private nextId = 0;

  /** Start `hub/cli.ts` with `args` (which must include --project) in `env`, probed. */
  constructor(dir: string, env: NodeJS.ProcessEnv, args: string[]) {
    this.dir = dir;
    this.project = args[args.indexOf("--project") + 1] as string;
    const flags = (process.env.SOAK_HUB_FLAGS ?? "").split(" ").filter(Boolean);
    this.child = spawn(
      process.execPath,
      [
        ...flags,
        "--import",
        join(ROOT, "bench/soak-probe.ts"),
        join(ROOT, "hub/cli.ts"),
        "--host",
        "127.0.0.1",
        ...args,
      ],
      { env, stdio: ["ignore", "pipe", "inherit", "ipc"] },
    );
    this.child.on("message", (reply: { id: number; memory: Memory; snapshot?: string }) => {
      this.asks.get(reply.id)?.(reply);
      this.asks.delete(reply.id);
    });
  }

  async listening(): Promise<void> {
    let out = "";
    this.url = await new Promise<string>((done, fail) => {
      this.child.stdout?.on("data", (chunk) => {
        out += chunk;
        const match = /listening on (\S+)/.exec(out);
        if (match) done(match[1] as string);
      });
      this.child.once("exit", (code) => fail(new Error(`hub exited with ${code}: ${out}`)));
    });
    const secret = readFileSync(join(this.dir, "net/projects", this.project, "server.secret.json"), "utf8");
    this.token = (JSON.parse(secret) as { token: string }).token;
  }

  memory(opts: { gc?: boolean; snapshot?: string } = {}): Promise<{ memory: Memory; snapshot?: string }> {
    const id = this.nextId++;
    return new Promise((done) => {
      this.asks.set(id, done);
      this.child.send({ id, ...opts });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/**
 * A real redis-server for the Redis store tests: its own temp dir, a free
 * 127.0.0.1 port, AOF on with `appendfsync everysec` (the persistence the
 * README recommends), killed at stop. `restart()` brings it back on the same
 * port and dir, so what the AOF kept is what the hubs see again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Stop it (SIGTERM, so the AOF is flushed, or SIGKILL) and wait until it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and data dir. */
  restart(): Promise<void>;
  /** Stop and remove the data dir. */
  dispose(): Promise<void>;
  output(): string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A free loopback port below the kernel's ephemeral range. The tests stop a
 * redis-server and start it again on its port; a port the kernel hands out
 * (port 0 listeners, outgoing connections) can be taken by another test in
 * between, one the kernel never hands out cannot.
 */
async function restartablePort(): Promise<number> {
  let low = 32768;
  try {
    low =
      Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: the usual start of the range.
  }
  const floor = Math.max(1024, low - 12_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  return freePort();
}

/** `password`: require it (`--requirepass`); the URL then carries it, as a deployment's would. */
export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-redis-"));
  const port = await restartablePort();
  let child: ChildProcess | undefined;
  let out = "";
  const launch = async () => {
    const proc = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--protected-mode",
        "yes",
        ...(opts.password ? ["--requirepass", opts.password] : []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = proc;
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        out += chunk;
        if (/Ready to accept connections/.test(out.slice(-4096))) resolve();
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", (chunk) => {
        out += chunk;
      });
      proc.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
      proc.once("error", reject);
    });
    out = "";
    await ready;
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    await gone;
  };
  await launch();
  return {
    url: `redis://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ""}127.0.0.1:${port}`,
    port,
    dir,
    stop,
    restart: launch,
    dispose: async () => {
      await stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
}

/**
 * Start-up cost of the plugin in real pi: time from spawning `pi --mode rpc`
 * to its first RPC answer (a `get_state`), with and without `-e plugin/index.ts`,
 * in interleaved pairs (the order alternates) so load from other processes
 * hits both alike. Prints every pair, both medians and the difference, for
 * the wall time (the figure that counts) and for the CPU time pi used until
 * it answered (read from /proc; steadier when other work shares the cores).
 *   node bench/startup.bench.ts [pairs]     (or: npm run bench:startup)
 *   PI_COMS_BENCH_EXTENSION=path  measures another entry (e.g. a built one)
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { startModelServer } from "../test/support/model-server.ts";
import { piCliPath, preparePiSandbox } from "../test/support/pi-harness.ts";

const PAIRS = Math.max(7, Number(process.argv[2] ?? 9) || 9);
const PLUGIN = resolve(
  process.env.PI_COMS_BENCH_EXTENSION ?? join(import.meta.dirname, "..", "plugin", "index.ts"),
);

const server = await startModelServer();

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (user + system) a live process has used, in ms; NaN where /proc is missing. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}

/** One cold start: spawn → the `get_state` response line on stdout; wall and CPU ms. */
async function firstAnswer(withPlugin: boolean): Promise<{ wall: number; cpu: number }> {
  const sandbox = preparePiSandbox({
    modelServer: server,
    name: "bench",
    session: false,
    extensions: withPlugin ? [PLUGIN] : [],
  });
  try {
    const started = performance.now();
    const child = spawn(process.execPath, [piCliPath(), "--mode", "rpc", ...sandbox.args], {
      cwd: sandbox.cwd,
      env: sandbox.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.write(`${JSON.stringify({ id: "1", type: "get_state" })}\n`);
    const elapsed = await new Promise<number>((done, fail) => {
      let buffer = "";
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.stdout.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        for (const line of buffer.split("\n").slice(0, -1)) {
          if (line.includes('"type":"response"') && line.includes('"id":"1"')) {
            done(performance.now() - started);
            return;
          }
        }
      });
      child.once("exit", (code) => fail(new Error(`pi exited (${code}) before answering:\n${stderr}`)));
    });
    const cpu = cpuMs(child.pid);
    child.stdin.end();
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    return { wall: elapsed, cpu };
  } finally {
    rmSync(sandbox.root, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

try {
  // One unmeasured start of each warms the file cache.
  await firstAnswer(false);
  await firstAnswer(true);
  const without: Array<{ wall: number; cpu: number }> = [];
  const withIt: Array<{ wall: number; cpu: number }> = [];
  console.log(`pi start-up: spawn → first RPC answer, ${PAIRS} interleaved pairs`);
  console.log(`extension: ${PLUGIN}`);
  for (let i = 0; i < PAIRS; i++) {
    const pluginFirst = i % 2 === 1;
    const a = await firstAnswer(pluginFirst);
    const b = await firstAnswer(!pluginFirst);
    const [off, on] = pluginFirst ? [b, a] : [a, b];
    without.push(off);
    withIt.push(on);
    console.log(
      `  pair ${i + 1}: without ${off.wall.toFixed(0)} ms (cpu ${off.cpu}), with ${on.wall.toFixed(0)} ms (cpu ${on.cpu})`,
    );
  }
  for (const key of ["wall", "cpu"] as const) {
    const a = median(without.map((x) => x[key]));
    const b = median(withIt.map((x) => x[key]));
    const diffs = withIt.map((w, i) => w[key] - (without[i]?.[key] ?? Number.NaN));
    console.log(
      `${key}: median without ${a.toFixed(0)} ms, with ${b.toFixed(0)} ms, added ${(b - a).toFixed(0)} ms (median of pair differences ${median(diffs).toFixed(0)} ms)`,
    );
  }
  console.log(
    `load average: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await server.close();
}

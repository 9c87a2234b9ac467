/**
 * Start-up cost of the plugin in real pi: time from spawning `pi --mode rpc`
 * to its first RPC answer (a `get_state`), without the plugin and with
 * `-e plugin/index.ts`, in interleaved rounds (the order rotates) so load
 * from other processes hits every arm alike. A third arm loads an empty
 * extension: what any extension costs in pi's loader, for scale.
 * Prints every round with the 1-minute load average beside it, then per arm
 * the median wall time (the figure that counts: what a user waits for) and
 * CPU time pi used until it answered (from /proc; steadier when other work
 * shares the cores), what the plugin adds, and the load the run saw.
 * Compare runs only at similar load: on a busy machine every arm slows.
 *   node bench/startup.bench.ts [rounds]     (or: npm run bench:startup)
 *   PI_COMS_BENCH_EXTENSION=path  measures another entry instead of plugin/index.ts
 *   PI_COMS_BENCH_BASELINE=path   adds an arm for another entry in the same rounds (an earlier
 *                                 version, e.g. from `git archive <rev> | tar -x -C /tmp/old`)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os, { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startModelServer } from "../test/support/model-server.ts";
import { piCliPath, preparePiSandbox } from "../test/support/pi-harness.ts";

const ROUNDS = Math.max(7, Number(process.argv[2] ?? 11) || 11);
const PLUGIN = resolve(
  process.env.PI_COMS_BENCH_EXTENSION ?? join(import.meta.dirname, "..", "plugin", "index.ts"),
);
const scratch = mkdtempSync(join(tmpdir(), "pi-coms-startup-"));
const EMPTY = join(scratch, "empty-extension.ts");
writeFileSync(EMPTY, "export default function (_pi: unknown): void {}\n");

const BASELINE = process.env.PI_COMS_BENCH_BASELINE ? resolve(process.env.PI_COMS_BENCH_BASELINE) : undefined;

type Arm = "without" | "empty" | "plugin" | "baseline";
const ARMS: Arm[] = ["without", "empty", "plugin", ...(BASELINE ? (["baseline"] as const) : [])];
const EXTENSIONS: Record<Arm, string[]> = {
  without: [],
  empty: [EMPTY],
  plugin: [PLUGIN],
  baseline: BASELINE ? [BASELINE] : [],
};
const TICK_MS = 10; // USER_HZ is 100 on Linux

const server = await startModelServer();

/**
 * CPU time a live process has used, in ms: the sum over its threads of the
 * nanosecond run time in /proc/<pid>/task/<tid>/schedstat (ticks of 10 ms
 * from /proc/<pid>/stat where schedstat is missing; NaN without /proc).
 */
function cpuMs(pid: number | undefined): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ")[0]);
    if (Number.isFinite(ns) && ns > 0) return ns / 1e6;
  } catch {
    // no schedstat here: fall back to the coarse ticks
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}

/** One cold start: spawn → the `get_state` response line on stdout; wall and CPU ms. */
async function firstAnswer(arm: Arm): Promise<{ wall: number; cpu: number }> {
  const sandbox = preparePiSandbox({
    modelServer: server,
    name: "bench",
    session: false,
    extensions: EXTENSIONS[arm],
  });
  try {
    const started = performance.now();
    const child = spawn(process.execPath, [piCliPath(), "--mode", "rpc", ...sandbox.args], {
      cwd: sandbox.cwd,
      env: sandbox.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.write(`${JSON.stringify({ id: "1", type: "get_state" })}\n`);
    const wall = await new Promise<number>((done, fail) => {
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
    return { wall, cpu };
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
  // One unmeasured start of each warms the file caches (pi's and its extension loader's).
  for (const arm of ARMS) await firstAnswer(arm);
  const runs: Record<Arm, Array<{ wall: number; cpu: number }>> = {
    without: [],
    empty: [],
    plugin: [],
    baseline: [],
  };
  console.log(`pi start-up: spawn → first RPC answer, ${ROUNDS} interleaved rounds`);
  console.log(`plugin entry: ${PLUGIN}${BASELINE ? `; baseline entry: ${BASELINE}` : ""}`);
  const loads: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const order = ARMS.map((_, k) => ARMS[(i + k) % ARMS.length] as Arm);
    for (const arm of order) runs[arm].push(await firstAnswer(arm));
    loads.push(loadavg()[0] as number);
    console.log(
      `  round ${i + 1}: ${ARMS.map((arm) => `${arm} ${runs[arm][i]?.wall.toFixed(0)} ms (cpu ${runs[arm][i]?.cpu.toFixed(0)})`).join(", ")}  [load ${loads[i]?.toFixed(2)}]`,
    );
  }
  for (const key of ["wall", "cpu"] as const) {
    const med = (arm: Arm) => median(runs[arm].map((r) => r[key]));
    const pairDiffs = runs.plugin.map((r, i) => r[key] - (runs.without[i]?.[key] ?? Number.NaN));
    console.log(
      `${key}: median without ${med("without").toFixed(0)} ms, empty extension ${med("empty").toFixed(0)} ms, plugin ${med("plugin").toFixed(0)} ms${BASELINE ? `, baseline ${med("baseline").toFixed(0)} ms` : ""}`,
    );
    console.log(
      `  plugin adds ${(med("plugin") - med("without")).toFixed(0)} ms (median of round differences ${median(pairDiffs).toFixed(0)} ms); over an empty extension ${(med("plugin") - med("empty")).toFixed(0)} ms`,
    );
    if (BASELINE) {
      const baseDiffs = runs.baseline.map((r, i) => r[key] - (runs.without[i]?.[key] ?? Number.NaN));
      console.log(
        `  baseline adds ${(med("baseline") - med("without")).toFixed(0)} ms (median of round differences ${median(baseDiffs).toFixed(0)} ms); over an empty extension ${(med("baseline") - med("empty")).toFixed(0)} ms`,
      );
    }
  }
  console.log(
    `load average (1 min) during the rounds: median ${median(loads).toFixed(2)}, min ${Math.min(...loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)}; ${os.availableParallelism()} cores`,
  );
} finally {
  await server.close();
  rmSync(scratch, { recursive: true, force: true });
}

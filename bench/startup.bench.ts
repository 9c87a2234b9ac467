/**
 * Start-up cost of the plugin in real pi: time from spawning `pi --mode rpc`
 * to its first RPC answer (a `get_state`), with and without `-e plugin/index.ts`,
 * in interleaved pairs (the order alternates) so load from other processes
 * hits both alike. Prints every pair, both medians and the difference.
 *   node bench/startup.bench.ts [pairs]     (or: npm run bench:startup)
 *   PI_COMS_BENCH_EXTENSION=path  measures another entry (e.g. a built one)
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { startModelServer } from "../test/support/model-server.ts";
import { piCliPath, preparePiSandbox } from "../test/support/pi-harness.ts";

const PAIRS = Math.max(7, Number(process.argv[2] ?? 9) || 9);
const PLUGIN = resolve(
  process.env.PI_COMS_BENCH_EXTENSION ?? join(import.meta.dirname, "..", "plugin", "index.ts"),
);

const server = await startModelServer();

/** One cold start: spawn → the `get_state` response line on stdout, in ms. */
async function firstAnswer(withPlugin: boolean): Promise<number> {
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
    child.stdin.end();
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    return elapsed;
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
  const without: number[] = [];
  const withIt: number[] = [];
  console.log(`pi start-up: spawn → first RPC answer, ${PAIRS} interleaved pairs`);
  console.log(`extension: ${PLUGIN}`);
  for (let i = 0; i < PAIRS; i++) {
    const order = i % 2 === 0 ? [false, true] : [true, false];
    const pair: Record<string, number> = {};
    for (const withPlugin of order) pair[String(withPlugin)] = await firstAnswer(withPlugin);
    without.push(pair.false as number);
    withIt.push(pair.true as number);
    console.log(
      `  pair ${i + 1}: without ${(pair.false as number).toFixed(0)} ms, with ${(pair.true as number).toFixed(0)} ms`,
    );
  }
  const a = median(without);
  const b = median(withIt);
  const diffs = withIt.map((w, i) => w - (without[i] as number));
  console.log(`median without the plugin: ${a.toFixed(0)} ms`);
  console.log(`median with the plugin:    ${b.toFixed(0)} ms`);
  console.log(
    `added: ${(b - a).toFixed(0)} ms (difference of medians); median of pair differences ${median(diffs).toFixed(0)} ms`,
  );
  console.log(
    `load average: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await server.close();
}

/**
 * P2P benchmark: send→ack and send→reply round trips through the tRPC link
 * (startP2P in this process, an auto-replying peer in a child process), and,
 * in the same run, a plain node:net newline-JSON echo over a Unix socket as
 * the floor. Prints p50/p99, msgs/s and the ratios to the floor. Every path
 * is measured in alternating blocks (latency) and rounds (throughput), so
 * load from other processes on a shared machine hits all paths alike; the
 * throughput is the median over the rounds, and the load average is printed.
 *   node bench/p2p.bench.ts          (or: npm run bench -- p2p)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startP2P } from "../peer/node.ts";
import { PeerProcess } from "../test/support/p2p-harness.ts";

const SEQUENTIAL = 2000;
const BLOCK = 250;
/** Throughput: this many rounds, each running every path once with PIPELINED calls. */
const ROUNDS = 5;
const PIPELINED = 4000;
const WINDOW = 256;
const PROMPT = "please review the retry logic in src/net/retry.ts";

const dir = realpathSync(mkdtempSync(join(tmpdir(), "pcb-")));
const children: ChildProcess[] = [];

function stats(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

async function sequential(n: number, once: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await once();
    samples.push((performance.now() - start) * 1000);
  }
  return samples;
}

/** `total` calls with at most `window` in flight; returns calls per second. */
async function pipelined(total: number, window: number, once: () => Promise<unknown>): Promise<number> {
  let started = 0;
  const start = performance.now();
  const lane = async () => {
    while (started < total) {
      started++;
      await once();
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return total / ((performance.now() - start) / 1000);
}

async function rawEcho(): Promise<{ once: () => Promise<unknown>; close: () => void }> {
  const path = join(dir, "raw.sock");
  const script = fileURLToPath(new URL("../test/support/p2p-raw-echo.ts", import.meta.url));
  const child = spawn(process.execPath, [script, path], { stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  await new Promise<void>((resolve) => child.stdout?.once("data", () => resolve()));
  const socket = connect({ path });
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.setEncoding("utf8");
  const waiters: Array<() => void> = [];
  let buffer = "";
  let id = 0;
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    let end = buffer.indexOf("\n");
    while (end !== -1) {
      JSON.parse(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
      waiters.shift()?.();
      end = buffer.indexOf("\n");
    }
  });
  return {
    once: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
        socket.write(`${JSON.stringify({ id: ++id, to: "echo", prompt: PROMPT })}\n`);
      }),
    close: () => socket.destroy(),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function row(label: string, s: { p50: number; p99: number }, rate?: number): string {
  const rateText = rate === undefined ? "" : `${Math.round(rate).toLocaleString("en-US").padStart(9)} msgs/s`;
  return `${label.padEnd(38)} p50 ${s.p50.toFixed(1).padStart(7)} µs   p99 ${s.p99.toFixed(1).padStart(8)} µs   ${rateText}`;
}

const loadBefore = loadavg()[0]?.toFixed(2);
try {
  const env = { ...process.env, PI_COMS_DIR: join(dir, "coms"), PI_COMS_PING_INTERVAL_MS: "0" };
  const echo = new PeerProcess(env);
  children.push(echo.child);
  await echo.call("start", { opts: { name: "echo", project: "bench" } });
  await echo.call("autoReply", { on: true, quiet: true });
  const node = await startP2P({ name: "bench", project: "bench", env });
  const sendOnce = () => node.send({ to: "echo", prompt: PROMPT });
  const link = node.peerClient("echo");
  const linkOnce = () => link.messages.send.mutate({ to: "echo", prompt: PROMPT });
  const replyOnce = async () => node.await((await sendOnce()).msg_id, { timeoutMs: 10_000 });

  const raw = await rawEcho();
  // Warm both paths up (JIT, connections) before measuring.
  await sequential(500, raw.once);
  await sequential(500, replyOnce);

  // Alternating blocks (each path warm within its block): load from other processes on a
  // shared machine then hits all four paths alike, so the ratios stay meaningful.
  const samples = { raw: [] as number[], link: [] as number[], ack: [] as number[], reply: [] as number[] };
  for (let block = 0; block < SEQUENTIAL / BLOCK; block++) {
    samples.raw.push(...(await sequential(BLOCK, raw.once)));
    samples.link.push(...(await sequential(BLOCK, linkOnce)));
    samples.ack.push(...(await sequential(BLOCK, sendOnce)));
    samples.reply.push(...(await sequential(BLOCK / 2, replyOnce)));
  }
  const rawSeq = stats(samples.raw);
  const linkSeq = stats(samples.link);
  const ackSeq = stats(samples.ack);
  const replySeq = stats(samples.reply);
  const rates = { raw: [] as number[], link: [] as number[], ack: [] as number[], reply: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    rates.raw.push(await pipelined(PIPELINED, WINDOW, raw.once));
    rates.link.push(await pipelined(PIPELINED, WINDOW, linkOnce));
    rates.ack.push(await pipelined(PIPELINED, WINDOW, sendOnce));
    rates.reply.push(await pipelined(PIPELINED / 2, WINDOW, replyOnce));
  }
  const rawRate = median(rates.raw);
  const linkRate = median(rates.link);
  const ackRate = median(rates.ack);
  const replyRate = median(rates.reply);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const share = (a: number) => `${((a / rawRate) * 100).toFixed(0)}%`;

  console.log(`load average before/after: ${loadBefore} / ${loadavg()[0]?.toFixed(2)} (2 cores)`);
  console.log(row("raw node:net echo (floor)", rawSeq, rawRate));
  console.log(row("link messages.send → ack", linkSeq, linkRate));
  console.log(row("node.send() → ack (+ outcome stream)", ackSeq, ackRate));
  console.log(row("node.send() → await reply", replySeq, replyRate));
  console.log(
    `ratios to the floor, p50 (target ≤ 2×): link ack ${ratio(linkSeq.p50, rawSeq.p50)}, ` +
      `send() ack ${ratio(ackSeq.p50, rawSeq.p50)}, reply ${ratio(replySeq.p50, rawSeq.p50)}; ` +
      `p99: link ${ratio(linkSeq.p99, rawSeq.p99)}, send() ${ratio(ackSeq.p99, rawSeq.p99)}, reply ${ratio(replySeq.p99, rawSeq.p99)}`,
  );
  console.log(
    `msgs/s (median of ${ROUNDS} rounds, target ≥ 20,000 acks/s): link ${Math.round(linkRate)} (${share(linkRate)} of the floor), ` +
      `send() ${Math.round(ackRate)} (${share(ackRate)}), reply ${Math.round(replyRate)} (${share(replyRate)})`,
  );
  raw.close();
  await node.close();
  await echo.call("close");
  await new Promise((resolve) => {
    echo.child.once("exit", resolve);
    echo.child.stdin.end();
  });
} finally {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

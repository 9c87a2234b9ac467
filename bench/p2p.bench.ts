/**
 * P2P benchmark: send→ack and send→reply round trips through the tRPC link
 * (startP2P in this process, an auto-replying peer in a child process), and,
 * in the same run, a plain node:net newline-JSON echo over a Unix socket as
 * the floor. A second peer that takes messages without replying separates the
 * ack path from the reply work the echoing peer does between two calls.
 * Prints p50/p99, msgs/s and the ratios to the floor. Every path
 * is measured in alternating blocks (latency) and rounds (throughput), so
 * load from other processes on a shared machine hits all paths alike; the
 * throughput is the median over the rounds, and the load average is printed.
 *   node bench/p2p.bench.ts          (or: npm run bench -- p2p)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startP2P } from "../peer/node.ts";
import { PeerProcess } from "../test/support/p2p-harness.ts";

/** Calls per path before anything is measured (pipelined, then 500 one at a time). */
const WARMUP = 20_000;
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

/** CPU time (user + system) a process has used so far, in µs; NaN where /proc is not available. */
function childCpuMicros(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of stat, counted in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

function ownCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

interface Throughput {
  rates: number[];
  /** CPU µs per message in this process (the sender) and in the serving process. */
  clientCpu: number;
  serverCpu: number;
  count: number;
}

/** One throughput block: the rate, and the CPU both processes spent on it. */
async function measured(
  into: Throughput,
  serverPid: number | undefined,
  total: number,
  once: () => Promise<unknown>,
): Promise<void> {
  const client = ownCpuMicros();
  const server = childCpuMicros(serverPid);
  into.rates.push(await pipelined(total, WINDOW, once));
  into.clientCpu += ownCpuMicros() - client;
  into.serverCpu += childCpuMicros(serverPid) - server;
  into.count += total;
}

async function rawEcho(): Promise<{
  once: () => Promise<unknown>;
  close: () => void;
  pid: number | undefined;
}> {
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
    pid: child.pid,
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
  const hold = new PeerProcess(env);
  children.push(hold.child);
  await hold.call("start", { opts: { name: "hold", project: "bench" } });
  await hold.call("autoReply", { on: false, quiet: true });
  const node = await startP2P({ name: "bench", project: "bench", env });
  const sendOnce = () => node.send({ to: "echo", prompt: PROMPT });
  const heldOnce = () => node.send({ to: "hold", prompt: PROMPT });
  const link = node.peerClient("echo");
  const linkOnce = () => link.messages.send.mutate({ to: "echo", prompt: PROMPT });
  const replyOnce = async () => node.await((await sendOnce()).msg_id, { timeoutMs: 10_000 });

  const raw = await rawEcho();
  // Warm every path up (JIT, connections) before measuring. The JIT needs thousands of calls
  // to compile the link's code (tRPC, zod, node-ipc, the inbox); after a few hundred it was
  // still compiling during the measured blocks, which then measured the warm-up, not the path.
  for (const once of [raw.once, linkOnce, sendOnce, replyOnce, heldOnce]) {
    await pipelined(WARMUP, WINDOW, once);
    await sequential(500, once);
  }

  // Alternating blocks (each path warm within its block): load from other processes on a
  // shared machine then hits all four paths alike, so the ratios stay meaningful.
  const samples = {
    raw: [] as number[],
    link: [] as number[],
    ack: [] as number[],
    reply: [] as number[],
    held: [] as number[],
  };
  const blank = (): Throughput => ({ rates: [], clientCpu: 0, serverCpu: 0, count: 0 });
  const seqCpu = { raw: blank(), link: blank(), ack: blank(), reply: blank(), held: blank() };
  const timed = async (
    key: keyof typeof samples,
    pid: number | undefined,
    n: number,
    once: () => Promise<unknown>,
  ) => {
    const client = ownCpuMicros();
    const server = childCpuMicros(pid);
    samples[key].push(...(await sequential(n, once)));
    seqCpu[key].clientCpu += ownCpuMicros() - client;
    seqCpu[key].serverCpu += childCpuMicros(pid) - server;
    seqCpu[key].count += n;
  };
  for (let block = 0; block < SEQUENTIAL / BLOCK; block++) {
    await timed("raw", raw.pid, BLOCK, raw.once);
    await timed("link", echo.child.pid, BLOCK, linkOnce);
    await timed("ack", echo.child.pid, BLOCK, sendOnce);
    await timed("reply", echo.child.pid, BLOCK / 2, replyOnce);
    await timed("held", hold.child.pid, BLOCK, heldOnce);
  }
  const rawSeq = stats(samples.raw);
  const linkSeq = stats(samples.link);
  const ackSeq = stats(samples.ack);
  const replySeq = stats(samples.reply);
  const heldSeq = stats(samples.held);
  const runs = { raw: blank(), link: blank(), ack: blank(), reply: blank() };
  for (let round = 0; round < ROUNDS; round++) {
    await measured(runs.raw, raw.pid, PIPELINED, raw.once);
    await measured(runs.link, echo.child.pid, PIPELINED, linkOnce);
    await measured(runs.ack, echo.child.pid, PIPELINED, sendOnce);
    await measured(runs.reply, echo.child.pid, PIPELINED / 2, replyOnce);
  }
  const rawRate = median(runs.raw.rates);
  const linkRate = median(runs.link.rates);
  const ackRate = median(runs.ack.rates);
  const replyRate = median(runs.reply.rates);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const share = (a: number) => `${((a / rawRate) * 100).toFixed(0)}%`;

  console.log(`load average before/after: ${loadBefore} / ${loadavg()[0]?.toFixed(2)} (2 cores)`);
  console.log(row("raw node:net echo (floor)", rawSeq, rawRate));
  console.log(row("link messages.send → ack", linkSeq, linkRate));
  console.log(row("node.send() → ack (+ outcome stream)", ackSeq, ackRate));
  console.log(row("node.send() → await reply", replySeq, replyRate));
  console.log(row("node.send() → ack, peer not replying", heldSeq));
  console.log(
    `ratios to the floor, p50 (target ≤ 2×): link ack ${ratio(linkSeq.p50, rawSeq.p50)}, ` +
      `send() ack ${ratio(ackSeq.p50, rawSeq.p50)}, reply ${ratio(replySeq.p50, rawSeq.p50)}, ` +
      `send() ack to a peer not replying ${ratio(heldSeq.p50, rawSeq.p50)}; ` +
      `p99: link ${ratio(linkSeq.p99, rawSeq.p99)}, send() ${ratio(ackSeq.p99, rawSeq.p99)}, reply ${ratio(replySeq.p99, rawSeq.p99)}`,
  );
  const cpu = (run: Throughput) =>
    `${(run.clientCpu / run.count).toFixed(1)} µs sender + ${(run.serverCpu / run.count).toFixed(1)} µs peer`;
  console.log(
    `CPU per message, one at a time: raw ${cpu(seqCpu.raw)}; link ${cpu(seqCpu.link)}; ` +
      `send() ${cpu(seqCpu.ack)}; reply ${cpu(seqCpu.reply)}; not replying ${cpu(seqCpu.held)}`,
  );
  console.log(
    `CPU per message, pipelined: raw ${cpu(runs.raw)}; link ${cpu(runs.link)}; ` +
      `send() ${cpu(runs.ack)}; reply ${cpu(runs.reply)}`,
  );
  console.log(
    `msgs/s (median of ${ROUNDS} rounds, target ≥ 20,000 acks/s): link ${Math.round(linkRate)} (${share(linkRate)} of the floor), ` +
      `send() ${Math.round(ackRate)} (${share(ackRate)}), reply ${Math.round(replyRate)} (${share(replyRate)})`,
  );
  raw.close();
  await node.close();
  for (const peer of [echo, hold]) {
    await peer.call("close");
    await new Promise((resolve) => {
      peer.child.once("exit", resolve);
      peer.child.stdin.end();
    });
  }
} finally {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

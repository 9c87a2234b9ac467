/**
 * P2P benchmark: send→ack and send→reply round trips through the tRPC link
 * (startP2P in this process, an auto-replying peer in a child process), and,
 * in the same run, a plain node:net newline-JSON echo over a Unix socket as
 * the floor. Prints p50/p99, msgs/s and the ratios to the floor.
 *   node bench/p2p.bench.ts          (or: npm run bench -- p2p)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startP2P } from "../peer/node.ts";
import { PeerProcess } from "../test/support/p2p-harness.ts";

const SEQUENTIAL = 2000;
const BLOCK = 250;
const PIPELINED = 20_000;
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

function row(label: string, s: { p50: number; p99: number }, rate?: number): string {
  const rateText = rate === undefined ? "" : `${Math.round(rate).toLocaleString("en-US").padStart(9)} msgs/s`;
  return `${label.padEnd(38)} p50 ${s.p50.toFixed(1).padStart(7)} µs   p99 ${s.p99.toFixed(1).padStart(8)} µs   ${rateText}`;
}

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
  const rawRate = await pipelined(PIPELINED, WINDOW, raw.once);
  const linkRate = await pipelined(PIPELINED, WINDOW, linkOnce);
  const ackRate = await pipelined(PIPELINED, WINDOW, sendOnce);
  const replyRate = await pipelined(PIPELINED / 4, WINDOW, replyOnce);

  console.log(row("raw node:net echo (floor)", rawSeq, rawRate));
  console.log(row("link messages.send → ack", linkSeq, linkRate));
  console.log(row("node.send() → ack (+ outcome watch)", ackSeq, ackRate));
  console.log(row("node.send() → await reply", replySeq, replyRate));
  console.log(
    `ratios to the floor: link ack p50 ${(linkSeq.p50 / rawSeq.p50).toFixed(2)}× (target ≤ 2×), ` +
      `send() ack p50 ${(ackSeq.p50 / rawSeq.p50).toFixed(2)}×, reply p50 ${(replySeq.p50 / rawSeq.p50).toFixed(2)}×; ` +
      `pipelined acks/s ${Math.round(linkRate)} link, ${Math.round(ackRate)} send() ` +
      `(${((linkRate / rawRate) * 100).toFixed(0)}% / ${((ackRate / rawRate) * 100).toFixed(0)}% of the floor; target ≥ 20,000)`,
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

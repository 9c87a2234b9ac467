/**
 * Hub benchmark: with 1, 100 and 1,000 SSE-connected agents, send→delivered
 * latency (p50, p99), messages per second and hub RSS per connected agent,
 * against a bare node:http SSE relay measured in the same run as the floor.
 *
 *   node bench/hub.bench.ts            (or: npm run bench -- hub)
 *   BENCH_AGENTS=1,100 BENCH_MESSAGES=3000 node bench/hub.bench.ts
 *
 * BENCH_BUN=1 also measures the hub running under Bun; BENCH_RELAY=0 skips the
 * relay; BENCH_HUB_FLAGS passes flags to the Node hub (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof").
 *
 * Throughput is 64 sends in flight from 4 clients (each batches what it has in
 * flight). Besides msg/s it prints the server's CPU time per message and the
 * bench process's own: on a 2-core machine both share the cores, so msg/s is
 * bounded by their sum, and the CPU figure is the steadier one.
 *
 * The relay is this same file started with --relay: one POST route that
 * writes the body to the recipient's open SSE response, nothing else (no
 * auth, validation, store or acks, which the hub does on top).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { InboxEvent } from "../contract/schemas.ts";
import { FetchEventSource } from "../hub/client/event-source.ts";
import { connectHub } from "../hub/client/hub-client.ts";
import { rawAgent } from "../test/support/hub-raw-client.ts";

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("../", import.meta.url));

if (process.argv[2] === "--relay") {
  runRelay();
} else {
  await main();
}

/** The floor: the least an HTTP + SSE relay can do. */
function runRelay(): void {
  const streams = new Map<string, ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://relay");
    if (req.method === "GET" && url.pathname === "/sse") {
      const id = url.searchParams.get("id") ?? "";
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      res.write(": connected\n\n");
      streams.set(id, res);
      req.once("close", () => streams.delete(id));
      return;
    }
    if (req.method === "POST" && url.pathname === "/send") {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        const { to, data } = JSON.parse(body) as { to: string; data: string };
        const stream = streams.get(to);
        if (!stream) {
          res.writeHead(404).end();
          return;
        }
        stream.write(`data: ${JSON.stringify(data)}\n\n`);
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as { port: number };
    process.stdout.write(`listening on http://127.0.0.1:${address.port}\n`);
  });
}

interface Target {
  name: string;
  pid: number;
  /** Connect one receiving agent; `onDelivered` gets the payload of every message it receives. */
  addAgent(index: number, onDelivered: (payload: string) => void): Promise<void>;
  send(to: number, payload: string): Promise<void>;
  close(): Promise<void>;
}

interface Row {
  target: string;
  agents: number;
  p50: number;
  p99: number;
  rate: number;
  /** Server CPU time (user + system) per message during the throughput phase. */
  cpuPerMsgUs: number;
  rssPerAgentKiB: number;
}

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_AGENTS ?? "1,100,1000").split(",").map(Number);
  const fdLimit = openFileLimit();
  // Each agent costs one socket on each side of the run, plus senders and slack.
  const affordable = fdLimit === null ? Infinity : Math.floor((fdLimit - 300) / 2);
  const counts = wanted.filter((n) => n <= affordable);
  if (counts.length < wanted.length) {
    console.log(
      `open-file limit ${fdLimit}: skipping ${wanted.filter((n) => n > affordable).join(", ")} agents`,
    );
  }
  const rows: Row[] = [];
  // BENCH_BUN=1 adds the same hub run under Bun.
  const targets = [
    () => startHub("node"),
    ...(process.env.BENCH_BUN ? [() => startHub("bun")] : []),
    // BENCH_RELAY=0 skips the floor (profiling runs).
    ...(process.env.BENCH_RELAY === "0" ? [] : [startRelay]),
  ];
  for (const make of targets) {
    const target = await make();
    try {
      rows.push(...(await measure(target, counts)));
    } finally {
      await target.close();
    }
  }
  report(rows);
}

async function measure(target: Target, counts: number[]): Promise<Row[]> {
  const rows: Row[] = [];
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let delivered = 0;
  // Woken by deliveries rather than polled: a spinning waiter would take a core from the server under test.
  let goal = Infinity;
  let reached: (() => void) | undefined;
  const onDelivered = (payload: string) => {
    const start = sentAt.get(payload);
    if (start === undefined) return;
    sentAt.delete(payload);
    latencies.push(performance.now() - start);
    delivered++;
    if (delivered >= goal) reached?.();
  };
  const deliveredReaches = (n: number, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      if (delivered >= n) return resolve();
      const timer = setTimeout(() => reject(new Error("benchmark step timed out")), timeoutMs);
      goal = n;
      reached = () => {
        goal = Infinity;
        reached = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  let connected = 0;
  let seq = 0;
  for (const count of counts) {
    // Memory per agent is what connecting these agents added, apart from message traffic before.
    await settle(target.pid);
    const rssBefore = rssKiB(target.pid);
    const added = count - connected;
    const adding: Promise<void>[] = [];
    for (; connected < count; connected++) {
      adding.push(target.addAgent(connected, onDelivered));
      // Connect in waves so a thousand handshakes do not all land in one tick.
      if (adding.length >= 50) await Promise.all(adding.splice(0));
    }
    await Promise.all(adding);
    await settle(target.pid);
    const rss = rssKiB(target.pid);
    // Latency: one message at a time.
    latencies.length = 0;
    const samples = 200;
    for (let i = 0; i < samples; i++) {
      const payload = `m${seq++}`;
      const before = delivered;
      sentAt.set(payload, performance.now());
      await target.send(i % count, payload);
      await deliveredReaches(before + 1, 5_000);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    // Throughput: many in flight.
    const total = Number(process.env.BENCH_MESSAGES ?? 3000);
    const inFlight = 64;
    const startDelivered = delivered;
    const cpuBefore = cpuMs(target.pid);
    const ownBefore = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < total) {
          const i = next++;
          const payload = `m${seq++}`;
          sentAt.set(payload, performance.now());
          await target.send(i % count, payload);
        }
      }),
    );
    await deliveredReaches(startDelivered + total, 30_000);
    const seconds = (performance.now() - t0) / 1000;
    const cpuAfter = cpuMs(target.pid);
    const own = process.cpuUsage(ownBefore);
    const clientPerMsgUs = (own.user + own.system) / total;
    const cpuPerMsgUs =
      cpuBefore === null || cpuAfter === null ? Number.NaN : ((cpuAfter - cpuBefore) * 1000) / total;
    rows.push({
      target: target.name,
      agents: count,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      rate: total / seconds,
      cpuPerMsgUs,
      rssPerAgentKiB:
        rssBefore === null || rss === null || added === 0 ? Number.NaN : (rss - rssBefore) / added,
    });
    console.log(
      `${target.name} ${count} agents: p50 ${fmt(percentile(sorted, 0.5))} ms, p99 ${fmt(percentile(sorted, 0.99))} ms, ` +
        `${Math.round(total / seconds)} msg/s, server CPU ${Math.round(cpuPerMsgUs)} µs/msg (bench clients ${Math.round(clientPerMsgUs)}), RSS/agent ${fmt(rows.at(-1)?.rssPerAgentKiB ?? Number.NaN)} KiB`,
    );
  }
  return rows;
}

async function startHub(runtime: "node" | "bun"): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-hub-bench-"));
  const env = {
    ...process.env,
    HOME: dir,
    PI_COMS_NET_DIR: join(dir, "net"),
    PI_COMS_DIR: join(dir, "coms"),
  };
  // BENCH_HUB_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the hub process (Node).
  const flags = runtime === "node" ? (process.env.BENCH_HUB_FLAGS ?? "").split(" ").filter(Boolean) : [];
  const { child, url } = await spawnServer(
    [...flags, join(ROOT, "hub/cli.ts"), "--project", "bench", "--max-agents", "5000"],
    env,
    runtime === "bun" ? join(ROOT, "node_modules/.bin/bun") : process.execPath,
  );
  const token = (
    JSON.parse(readFileSync(join(dir, "net/projects/bench/server.secret.json"), "utf8")) as { token: string }
  ).token;
  // Several senders, as several sessions would be; each batches what it has in flight.
  const senders = await Promise.all(
    Array.from({ length: 4 }, (_, i) =>
      connectHub({ url, token, project: "bench", name: `sender${i}`, env }),
    ),
  );
  let turn = 0;
  const subs: Array<{ unsubscribe(): void }> = [];
  return {
    name: runtime === "bun" ? "hub-bun" : "hub",
    pid: child.pid as number,
    async addAgent(index, onDelivered) {
      // A lean receiver: the typed client's stream and acks, without the pool-widget bookkeeping.
      const agent = await rawAgent(url, token, `r${index}`);
      const toAck: string[] = [];
      let scheduled = false;
      await new Promise<void>((resolve) => {
        subs.push(
          agent.client.messages.inbox.subscribe(
            { lastEventId: null },
            {
              onStarted: () => resolve(),
              onData: ({ data }: { data: InboxEvent }) => {
                if (data.kind !== "message") return;
                onDelivered(data.message.prompt);
                toAck.push(data.message.msg_id);
                if (scheduled) return;
                scheduled = true;
                // As the typed client does: acks gathered over a short window.
                setTimeout(() => {
                  scheduled = false;
                  void agent.client.messages.ack.mutate({ msg_ids: toAck.splice(0) }).catch(() => {});
                }, 20);
              },
            },
          ),
        );
      });
    },
    async send(to, payload) {
      const sender = senders[turn++ % senders.length] as (typeof senders)[number];
      await sender.send({ to: `r${to}`, prompt: payload });
    },
    async close() {
      for (const sub of subs) sub.unsubscribe();
      await Promise.all(senders.map((sender) => sender.close()));
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startRelay(): Promise<Target> {
  const { child, url } = await spawnServer([SELF, "--relay"], process.env);
  const sources: FetchEventSource[] = [];
  return {
    name: "relay",
    pid: child.pid as number,
    async addAgent(index, onDelivered) {
      const source = new FetchEventSource(`${url}/sse?id=r${index}`);
      sources.push(source);
      source.addEventListener("message", (event: { data: string }) => onDelivered(JSON.parse(event.data)));
      await new Promise((resolve) => source.addEventListener("open", resolve));
    },
    async send(to, payload) {
      const response = await fetch(`${url}/send`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ to: `r${to}`, data: payload }),
      });
      await response.text();
    },
    async close() {
      for (const source of sources) source.close();
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

async function spawnServer(
  args: string[],
  env: NodeJS.ProcessEnv,
  bin: string = process.execPath,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  process.once("exit", () => child.kill("SIGKILL"));
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  await until(() => /listening on http:\/\/\S+/.test(out), 15_000);
  const url = /listening on (http:\/\/\S+)/.exec(out)?.[1] as string;
  return { child, url };
}

function report(rows: Row[]): void {
  console.log("\nagents | target  | p50 ms | p99 ms | msg/s  | CPU µs/msg | RSS/agent KiB");
  for (const row of rows) {
    console.log(
      `${String(row.agents).padStart(6)} | ${row.target.padEnd(7)} | ${fmt(row.p50).padStart(6)} | ${fmt(row.p99).padStart(6)} | ` +
        `${String(Math.round(row.rate)).padStart(6)} | ${String(Math.round(row.cpuPerMsgUs)).padStart(10)} | ${fmt(row.rssPerAgentKiB)}`,
    );
  }
  console.log("\nratios hub / relay (latency: lower is better; rate: higher is better)");
  for (const hub of rows.filter((row) => row.target !== "relay")) {
    const relay = rows.find((row) => row.target === "relay" && row.agents === hub.agents);
    if (!relay) continue;
    console.log(
      `${hub.target.padEnd(7)} ${String(hub.agents).padStart(5)} agents: p50 ×${fmt(hub.p50 / relay.p50)}, p99 ×${fmt(hub.p99 / relay.p99)}, ` +
        `msg/s ×${fmt(hub.rate / relay.rate)}, RSS/agent ×${fmt(hub.rssPerAgentKiB / relay.rssPerAgentKiB)}`,
    );
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function fmt(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : "n/a";
}

function rssKiB(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system) the process has used so far, in ms. */
function cpuMs(pid: number): number | null {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

function openFileLimit(): number | null {
  try {
    const match = /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Let the server finish connection work (GC, peers broadcasts) before reading its RSS. */
async function settle(pid: number): Promise<void> {
  let last = rssKiB(pid);
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = rssKiB(pid);
    if (now === last) return;
    last = now;
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("benchmark step timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

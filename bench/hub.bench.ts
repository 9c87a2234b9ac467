/**
 * Hub benchmark: with 1, 100 and 1,000 SSE-connected agents, send→delivered
 * latency (p50, p99), messages per second, the server's CPU time per message
 * and hub RSS per connected agent, against a bare node:http SSE relay
 * measured in the same run as the floor.
 *
 *   node bench/hub.bench.ts            (or: npm run bench -- hub)
 *   BENCH_AGENTS=1,100 BENCH_MESSAGES=3000 node bench/hub.bench.ts
 *
 * Each hub runtime (Node, and Bun unless BENCH_BUN=0) is loaded two ways:
 * "fetch", a raw-fetch load generator (pre-built JSON bodies, a plain SSE
 * reader), which shows the hub's own cost; and "trpc", the typed clients pi
 * sessions use, whose CPU per send+delivery ("client µs") is the client's
 * cost. BENCH_RELAY=0 skips the relay; BENCH_ONLY=node,fetch picks targets by
 * name; "redis trpc" is two Node hubs on one redis-server, typed clients
 * spread over both, compared with "node trpc" (BENCH_REDIS=0 skips it); BENCH_HUB_FLAGS passes flags to the Node hub (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof"). The hub runs with its send rate limit off.
 *
 * Throughput is 64 sends in flight from 4 senders. "batch msg/s" is one
 * client pipelining sends to one agent in batches (50 calls per request, 4
 * requests in flight), acks coalesced. On a 2-core machine the hub and this
 * process share the cores, so msg/s is bounded by their sum; CPU per message
 * is the steadier figure. RSS per agent is left out at 1 agent (start-up
 * growth dominates it).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { hubsOnRedis, hubViaFetch, hubViaTrpc, relay, type Target } from "./hub-targets.ts";

interface Row {
  target: string;
  agents: number;
  p50: number;
  p99: number;
  rate: number;
  /** Server CPU time (user + system) per message during the throughput phase. */
  cpuPerMsgUs: number;
  /** This process's CPU (senders + receivers) per message during the throughput phase. */
  clientPerMsgUs: number;
  rssPerAgentKiB: number;
  /** Delivered msg/s with one client pipelining batches to one agent (first agent count only). */
  batchRate: number;
}

await main();

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_AGENTS ?? "1,100,1000").split(",").map(Number);
  const fdLimit = openFileLimit();
  // Each agent costs one socket on each side of the run (two for the typed client), plus senders and slack.
  const affordable = fdLimit === null ? Infinity : Math.floor((fdLimit - 300) / 3);
  const counts = wanted.filter((n) => n <= affordable);
  if (counts.length < wanted.length) {
    console.log(
      `open-file limit ${fdLimit}: skipping ${wanted.filter((n) => n > affordable).join(", ")} agents`,
    );
  }
  const bun = process.env.BENCH_BUN !== "0";
  const makers: Array<[string, () => Promise<Target>]> = [
    ["node fetch", () => hubViaFetch("node")],
    ["node trpc", () => hubViaTrpc("node")],
    ...(bun
      ? ([
          ["bun fetch", () => hubViaFetch("bun")],
          ["bun trpc", () => hubViaTrpc("bun")],
        ] as Array<[string, () => Promise<Target>]>)
      : []),
    // Needs redis-server on PATH (Debian: apt-get install redis-server); BENCH_REDIS=0 skips it.
    ...(process.env.BENCH_REDIS === "0" || !hasRedisServer()
      ? []
      : ([["redis trpc", hubsOnRedis]] as Array<[string, () => Promise<Target>]>)),
    ...(process.env.BENCH_RELAY === "0"
      ? []
      : ([["relay", relay]] as Array<[string, () => Promise<Target>]>)),
  ];
  const only = process.env.BENCH_ONLY?.split(",");
  const rows: Row[] = [];
  for (const [name, make] of makers) {
    if (only && name !== "relay" && !only.every((word) => name.includes(word))) continue;
    const target = await make();
    try {
      rows.push(...(await measure(target, counts)));
    } finally {
      await target.close();
    }
  }
  report(rows);
  reportRedis(rows);
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
    // One client pipelining batches to one agent (once per target).
    let batchRate = Number.NaN;
    if (target.sendBatch && rows.length === 0) {
      const batches = Number(process.env.BENCH_BATCHES ?? 200);
      const size = 50;
      const before = delivered;
      const t1 = performance.now();
      let nextBatch = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (nextBatch < batches) {
            nextBatch++;
            const payloads = Array.from({ length: size }, () => `m${seq++}`);
            const now = performance.now();
            for (const p of payloads) sentAt.set(p, now);
            await target.sendBatch?.(0, payloads);
          }
        }),
      );
      await deliveredReaches(before + batches * size, 60_000);
      batchRate = (batches * size) / ((performance.now() - t1) / 1000);
    }
    rows.push({
      target: target.name,
      agents: count,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      rate: total / seconds,
      cpuPerMsgUs,
      clientPerMsgUs,
      batchRate,
      rssPerAgentKiB:
        rssBefore === null || rss === null || count < 100 ? Number.NaN : (rss - rssBefore) / added,
    });
    console.log(
      `${target.name} ${count} agents: p50 ${fmt(percentile(sorted, 0.5))} ms, p99 ${fmt(percentile(sorted, 0.99))} ms, ` +
        `${Math.round(total / seconds)} msg/s, server CPU ${Math.round(cpuPerMsgUs)} µs/msg (clients ${Math.round(clientPerMsgUs)}), RSS/agent ${fmt(rows.at(-1)?.rssPerAgentKiB ?? Number.NaN)} KiB` +
        (Number.isFinite(batchRate) ? `, batch ${Math.round(batchRate)} msg/s` : ""),
    );
  }
  return rows;
}

function report(rows: Row[]): void {
  console.log(
    "\nagents | target     | p50 ms | p99 ms | msg/s  | hub CPU µs/msg | client µs/msg | RSS/agent KiB | batch msg/s",
  );
  for (const row of rows) {
    console.log(
      `${String(row.agents).padStart(6)} | ${row.target.padEnd(10)} | ${fmt(row.p50).padStart(6)} | ${fmt(row.p99).padStart(6)} | ` +
        `${String(Math.round(row.rate)).padStart(6)} | ${String(Math.round(row.cpuPerMsgUs)).padStart(14)} | ` +
        `${String(Math.round(row.clientPerMsgUs)).padStart(13)} | ${fmt(row.rssPerAgentKiB).padStart(13)} | ` +
        `${Number.isFinite(row.batchRate) ? String(Math.round(row.batchRate)) : ""}`,
    );
  }
  console.log("\nratios hub / relay, same run (latency and CPU: lower is better; msg/s: higher is better)");
  for (const hub of rows.filter((row) => row.target !== "relay")) {
    const floor = rows.find((row) => row.target === "relay" && row.agents === hub.agents);
    if (!floor) continue;
    console.log(
      `${hub.target.padEnd(10)} ${String(hub.agents).padStart(5)} agents: hub CPU ×${fmt(hub.cpuPerMsgUs / floor.cpuPerMsgUs)}, ` +
        `p50 ×${fmt(hub.p50 / floor.p50)}, p99 ×${fmt(hub.p99 / floor.p99)}, msg/s ×${fmt(hub.rate / floor.rate)}`,
    );
  }
}

/** The same load through two hubs sharing a Redis store vs one hub on its SQLite file. */
function reportRedis(rows: Row[]): void {
  const pairs = rows
    .filter((row) => row.target === "redis trpc")
    .map(
      (redis) =>
        [redis, rows.find((row) => row.target === "node trpc" && row.agents === redis.agents)] as const,
    )
    .filter((pair): pair is readonly [Row, Row] => pair[1] !== undefined);
  if (pairs.length === 0) return;
  console.log(
    "\nratios 2 hubs on one Redis / 1 SQLite hub, same typed client (latency: lower is better; msg/s: higher is better)",
  );
  for (const [redis, sqlite] of pairs) {
    console.log(
      `${String(redis.agents).padStart(5)} agents: p50 ${fmt(redis.p50)} vs ${fmt(sqlite.p50)} ms ×${fmt(redis.p50 / sqlite.p50)}, ` +
        `p99 ${fmt(redis.p99)} vs ${fmt(sqlite.p99)} ms ×${fmt(redis.p99 / sqlite.p99)}, ` +
        `msg/s ${Math.round(redis.rate)} vs ${Math.round(sqlite.rate)} ×${fmt(redis.rate / sqlite.rate)}`,
    );
  }
}

function hasRedisServer(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function fmt(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : "—";
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

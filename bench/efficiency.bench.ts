/**
 * Hub efficiency against the bare relay, at the hub's default settings
 * (SQLite store, durability on), Node and Bun, with ratios taken within one
 * run and the arms interleaved, so load from elsewhere on a shared machine
 * hits every arm alike. The unit is an answered prompt: a sender sends, the
 * recipient answers at once, the reply reaches the sender, as agents use a
 * hub. The relay does the same with two plain POSTs and two SSE writes.
 *
 *   node bench/efficiency.bench.ts          (or: npm run bench -- efficiency)
 *   BENCH_AGENTS=100,1000 BENCH_REPS=5 BENCH_EXCHANGES=3000 BENCH_WARMUP=8000 BENCH_IDLE=5000 BENCH_BUN=1
 *   BENCH_IDLE_SETTLE_MS=20000 (wait after the idle agents connect, before measuring)
 *   BENCH_BASELINE=<another checkout>   adds hubs started from that tree ("base" on Node, "base-bun" on Bun
 *                                       unless BENCH_BUN=0), for before/after
 *
 * Columns: p50 of send→delivered (one at a time), answered prompts per
 * second (64 in flight from 16 senders) and the server's CPU time per
 * answered prompt, each the median over the reps; ratios are hub / relay of
 * the same rep, medians over the reps (the CPU ratio also gives the lowest
 * and highest rep, so the noise is in view). Then 5,000 agents connected and idle
 * (inbox stream open, nothing sent) on a Node hub: its CPU %, against the same
 * agents sending the seed's heartbeat (one per agent per
 * PI_COMS_NET_HEARTBEAT_MS, default 10 s) to the same hub. The hub's agent cap
 * (4,096 by default) is raised to fit them: the only setting changed.
 * Clients are raw fetch (pre-built bodies, a plain SSE reader) so that the
 * server's cost is what is measured; receivers settle (no separate ack, as
 * the typed client does), senders' acks of the replies ride on their next send.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ulid } from "../contract/ids.ts";
import type { InboxEvent } from "../contract/schemas.ts";
import { AckBatcher } from "../hub/client/ack-batcher.ts";
import { FetchEventSource } from "../hub/client/event-source.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { type BenchHub, spawnServer, startBenchHub, stop } from "./bench-server.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SENDERS = 16;
const IN_FLIGHT = 64;
const LATENCY_SAMPLES = 100;

interface Arm {
  name: string;
  pid: number;
  /** Connect receivers r<from>…r<to - 1>. */
  addAgents(from: number, to: number): Promise<void>;
  /** Send `payload` to receiver `to`; resolves when its answer reached the sender. */
  exchange(sender: number, to: number, payload: string): Promise<void>;
  close(): Promise<void>;
}

interface Sample {
  p50: number;
  rate: number;
  cpuUs: number;
}

/** Receivers report each payload they get here (the latency clock). */
const sentAt = new Map<string, number>();
const latencies: number[] = [];
function delivered(payload: string): void {
  const start = sentAt.get(payload);
  if (start === undefined) return;
  sentAt.delete(payload);
  latencies.push(performance.now() - start);
}

async function main(): Promise<void> {
  const counts = (process.env.BENCH_AGENTS ?? "100,1000").split(",").map(Number);
  // Rep to rep a ratio moves by ±15 % on a 2-core machine (both processes share it); five reps
  // make the median steadier than three, and the table shows the spread.
  const reps = Number(process.env.BENCH_REPS ?? 5);
  // Enough that the CPU figure (read from /proc in 10 ms ticks) is not mostly rounding.
  const exchanges = Number(process.env.BENCH_EXCHANGES ?? 3000);
  // A hub's code takes longer than the relay's to reach its steady state: after 2,000 prompts its first
  // rep still cost 15–30 % more than its later ones, after 8,000 it no longer does.
  const warmup = Number(process.env.BENCH_WARMUP ?? 8000);
  const idleAgents = Number(process.env.BENCH_IDLE ?? 5000);
  const loadBefore = loadavg().map((n) => n.toFixed(2));
  const arms: Arm[] = [await relayArm(), await hubArm("node")];
  if (process.env.BENCH_BUN !== "0") arms.push(await hubArm("bun"));
  const baseline = process.env.BENCH_BASELINE;
  if (baseline) {
    arms.push(await hubArm("node", baseline));
    if (process.env.BENCH_BUN !== "0") arms.push(await hubArm("bun", baseline));
  }
  const results = new Map<string, Sample[]>();
  try {
    let connected = 0;
    for (const count of counts) {
      for (const arm of arms) await arm.addAgents(connected, count);
      if (connected === 0) {
        // Every arm warm before the first measured rep (a fresh process runs its first thousands of
        // requests through the interpreter and the compiler), so no arm pays for its JIT in the figures.
        for (const arm of arms) await measure(arm, count, warmup);
      }
      connected = count;
      for (let rep = 0; rep < reps; rep++) {
        // Interleaved: every rep runs each arm once, starting with a different one.
        for (let k = 0; k < arms.length; k++) {
          const arm = arms[(rep + k) % arms.length] as Arm;
          const sample = await measure(arm, count, exchanges);
          const key = `${arm.name}@${count}`;
          results.set(key, [...(results.get(key) ?? []), sample]);
          console.log(
            `${arm.name.padEnd(8)} ${String(count).padStart(5)} agents rep ${rep + 1}: p50 ${sample.p50.toFixed(2)} ms, ` +
              `${Math.round(sample.rate)} answered/s, server CPU ${Math.round(sample.cpuUs)} µs per answered prompt`,
          );
        }
      }
    }
  } finally {
    for (const arm of arms) await arm.close();
  }
  const idle = idleAgents > 0 ? await idleHub(idleAgents) : undefined;
  console.log(
    `\nload average before: ${loadBefore.join(" ")}; after: ${loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")} (${cpus()} cores)`,
  );
  report(
    results,
    counts,
    reps,
    arms.map((arm) => arm.name),
  );
  if (idle) {
    console.log(
      `\n${idle.agents} idle connected agents, Node hub: ${idle.streamPct.toFixed(2)} % CPU with streams only (target ≤ 3 %); ` +
        `${idle.heartbeatPct.toFixed(2)} % with a heartbeat per agent every ${idle.heartbeatMs} ms (the seed's clients)` +
        (idle.streamPct > 0 ? `, ×${(idle.heartbeatPct / idle.streamPct).toFixed(1)}` : ""),
    );
  }
}

function report(results: Map<string, Sample[]>, counts: number[], reps: number, names: string[]): void {
  console.log(`\nanswered prompts, medians over ${reps} interleaved reps`);
  console.log(
    "agents | arm      | p50 ms | answered/s | server CPU µs each | ×relay CPU | reps' range | ×relay p50 | ×relay msg/s",
  );
  for (const count of counts) {
    const relay = results.get(`relay@${count}`) ?? [];
    for (const name of names) {
      const samples = results.get(`${name}@${count}`) ?? [];
      const ratios = (pick: (s: Sample) => number) =>
        samples.map((s, i) => pick(s) / pick(relay[i] as Sample));
      const ratio = (pick: (s: Sample) => number) =>
        name === "relay" ? "1" : median(ratios(pick)).toFixed(2);
      const cpuRatios = ratios((s) => s.cpuUs);
      const range =
        name === "relay" ? "" : `${Math.min(...cpuRatios).toFixed(2)}–${Math.max(...cpuRatios).toFixed(2)}`;
      console.log(
        `${String(count).padStart(6)} | ${name.padEnd(8)} | ${median(samples.map((s) => s.p50))
          .toFixed(2)
          .padStart(6)} | ` +
          `${String(Math.round(median(samples.map((s) => s.rate)))).padStart(10)} | ` +
          `${String(Math.round(median(samples.map((s) => s.cpuUs)))).padStart(18)} | ` +
          `${ratio((s) => s.cpuUs).padStart(10)} | ${range.padStart(11)} | ${ratio((s) => s.p50).padStart(10)} | ${ratio((s) => s.rate).padStart(12)}`,
      );
    }
  }
  console.log("targets: ×relay CPU ≤ 1.5, ×relay p50 ≤ 1.5, ×relay msg/s ≥ 0.8");
  for (const [mine, base, label] of [
    ["node", "base", "Node"],
    ["bun", "base-bun", "Bun"],
  ] as const) {
    if (!names.includes(base)) continue;
    for (const count of counts) {
      const before = results.get(`${base}@${count}`) ?? [];
      const now = results.get(`${mine}@${count}`) ?? [];
      const ratios = now.map((s, i) => s.cpuUs / (before[i] as Sample).cpuUs);
      console.log(
        `${count} agents: this tree's ${label} hub uses ×${median(ratios).toFixed(3)} the baseline's CPU per answered prompt ` +
          `(per rep: ${ratios.map((r) => r.toFixed(2)).join(" ")})`,
      );
    }
  }
}

let seq = 0;

async function measure(arm: Arm, count: number, exchanges: number): Promise<Sample> {
  latencies.length = 0;
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const payload = `m${seq++}`;
    sentAt.set(payload, performance.now());
    await arm.exchange(i % SENDERS, (i * 7919) % count, payload);
  }
  const p50 = median(latencies);
  const cpuBefore = cpuClock(arm.pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, lane) => {
      while (next < exchanges) {
        const i = next++;
        await arm.exchange(lane % SENDERS, (i * 7919) % count, `m${seq++}`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(cpuBefore);
  return { p50, rate: exchanges / seconds, cpuUs: (cpu * 1000) / exchanges };
}

/** The floor: node:http, a map of SSE responses, JSON in, `data:` out (bench/hub-targets.ts --relay). */
async function relayArm(): Promise<Arm> {
  const { child, url } = await spawnServer(
    process.execPath,
    [join(ROOT, "bench/hub-targets.ts"), "--relay"],
    process.env,
  );
  const sources: FetchEventSource[] = [];
  const waiting = new Map<string, () => void>();
  const post = async (to: string, data: string) => {
    const res = await fetch(`${url}/send`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ to, data }),
    });
    await res.text();
  };
  const open = async (id: string, onData: (data: string) => void) => {
    const source = new FetchEventSource(`${url}/sse?id=${id}`);
    sources.push(source);
    source.addEventListener("message", (event: { data: string }) => onData(JSON.parse(event.data)));
    await new Promise((resolve) => source.addEventListener("open", resolve));
  };
  for (let s = 0; s < SENDERS; s++) {
    await open(`s${s}`, (payload) => {
      waiting.get(payload)?.();
      waiting.delete(payload);
    });
  }
  return {
    name: "relay",
    pid: child.pid as number,
    async addAgents(from, to) {
      await inWaves(from, to, (i) =>
        open(`r${i}`, (data) => {
          const cut = data.indexOf(":");
          const payload = data.slice(cut + 1);
          delivered(payload);
          void post(`s${data.slice(0, cut)}`, payload);
        }),
      );
    },
    exchange(sender, to, payload) {
      const answered = new Promise<void>((resolve) => waiting.set(payload, resolve));
      return post(`r${to}`, `${sender}:${payload}`).then(() => answered);
    },
    async close() {
      for (const source of sources) source.close();
      await stop(child);
    },
  };
}

type HubProcess = BenchHub;

/** A hub as `pi-coms-hub` starts it: default settings, SQLite store in a fresh directory. */
function startHub(runtime: "node" | "bun", args: string[] = [], root?: string): Promise<HubProcess> {
  return startBenchHub(runtime, { prefix: "pi-coms-eff-", args, ...(root ? { root } : {}) });
}

/** Register over raw fetch (presence from the stream, as the typed client asks); the headers of that agent. */
async function register(hub: HubProcess, name: string): Promise<Record<string, string>> {
  const res = await fetch(`${hub.url}/trpc/agents.register`, {
    method: "POST",
    headers: { authorization: `Bearer ${hub.token}`, "content-type": "application/json" },
    body: JSON.stringify({ json: { name, presence: "stream" } }),
  });
  const body = (await res.json()) as {
    result: { data: { json: { card: { id: string }; agent_token: string } } };
  };
  const { card, agent_token } = body.result.data.json;
  return {
    authorization: `Bearer ${hub.token}`,
    "content-type": "application/json",
    [AGENT_ID_HEADER]: card.id,
    [AGENT_TOKEN_HEADER]: agent_token,
  };
}

const INBOX_INPUT = encodeURIComponent(JSON.stringify({ json: { lastEventId: null } }));

function openInbox(
  hub: HubProcess,
  headers: Record<string, string>,
  onEvent: (event: InboxEvent) => void,
  sources: FetchEventSource[],
): Promise<void> {
  const source = new FetchEventSource(`${hub.url}/trpc/messages.inbox?input=${INBOX_INPUT}`, { headers });
  sources.push(source);
  source.addEventListener("message", (event: { data: string }) => {
    onEvent((JSON.parse(event.data) as { json: InboxEvent }).json);
  });
  return new Promise((resolve) => source.addEventListener("connected", () => resolve()));
}

/** A hub arm; `root` starts the hub of another checkout (the arm is then named "base"). */
async function hubArm(runtime: "node" | "bun", root?: string): Promise<Arm> {
  const hub = await startHub(runtime, [], root);
  const sources: FetchEventSource[] = [];
  const waiting = new Map<string, () => void>();
  const post = async (headers: Record<string, string>, path: string, json: unknown) => {
    const res = await fetch(`${hub.url}/trpc/${path}`, {
      method: "POST",
      headers,
      body: JSON.stringify({ json }),
    });
    await res.text();
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  };
  const senders: Array<{ headers: Record<string, string>; acks: AckBatcher }> = [];
  for (let s = 0; s < SENDERS; s++) {
    const headers = await register(hub, `s${s}`);
    const acks = new AckBatcher((ids) => post(headers, "messages.ack", { msg_ids: ids }));
    await openInbox(
      hub,
      headers,
      (event) => {
        if (event.kind !== "outcome") return;
        acks.add(event.outcome.msg_id);
        waiting.get(event.outcome.msg_id)?.();
        waiting.delete(event.outcome.msg_id);
      },
      sources,
    );
    senders.push({ headers, acks });
  }
  return {
    name: !root ? runtime : runtime === "node" ? "base" : "base-bun",
    pid: hub.child.pid as number,
    async addAgents(from, to) {
      await inWaves(from, to, async (i) => {
        const headers = await register(hub, `r${i}`);
        await openInbox(
          hub,
          headers,
          (event) => {
            if (event.kind !== "message") return;
            delivered(event.message.prompt);
            // The answer settles the message: no ack of its own.
            void post(headers, "messages.settle", {
              msg_id: event.message.msg_id,
              result: { ok: true, text: "ok" },
            });
          },
          sources,
        );
      });
    },
    exchange(sender, to, payload) {
      const { headers, acks } = senders[sender] as (typeof senders)[number];
      const msgId = ulid();
      const answered = new Promise<void>((resolve) => waiting.set(msgId, resolve));
      // The acks of earlier replies ride along with this send.
      const ack = acks.take();
      return post(headers, "messages.send", {
        to: `r${to}`,
        prompt: payload,
        msg_id: msgId,
        ...(ack ? { ack } : {}),
      })
        .catch((error) => {
          if (ack) acks.restore(ack);
          throw error;
        })
        .then(() => answered);
    },
    async close() {
      for (const source of sources) source.close();
      await stop(hub.child);
      rmSync(hub.dir, { recursive: true, force: true });
    },
  };
}

/** Many agents connected and idle on a Node hub: its CPU % with streams alone, then with the seed's heartbeats. */
async function idleHub(agents: number): Promise<{
  agents: number;
  streamPct: number;
  heartbeatPct: number;
  heartbeatMs: number;
}> {
  const hub = await startHub("node", ["--max-agents", String(agents)]);
  const sources: FetchEventSource[] = [];
  const everyone: Array<Record<string, string>> = [];
  try {
    await inWaves(0, agents, async (i) => {
      const headers = await register(hub, `idle${i}`);
      everyone.push(headers);
      await openInbox(hub, headers, () => {}, sources);
    });
    const pid = hub.child.pid as number;
    // Let the registrations' aftermath pass: their presence broadcasts, and the full collections V8's
    // memory reducer runs once a process that allocated a lot goes quiet (about 8–15 s after the burst
    // here, a few hundred ms of marking each). They happen once after a burst, not while a hub idles.
    await sleep(Number(process.env.BENCH_IDLE_SETTLE_MS ?? 20_000));
    const window = Number(process.env.BENCH_IDLE_WINDOW_MS ?? 10_000);
    const streamPct = await cpuPercent(pid, window);
    const heartbeatMs = Number(process.env.PI_COMS_NET_HEARTBEAT_MS ?? 10_000);
    // The seed's clients: each agent sends a heartbeat every heartbeatMs, spread evenly.
    let stopped = false;
    const beats = everyone.map((headers, i) =>
      setTimeout(
        function beat() {
          if (stopped) return;
          void fetch(`${hub.url}/trpc/agents.heartbeat`, { method: "POST", headers, body: '{"json":{}}' })
            .then((res) => res.text())
            .catch(() => {});
          beats[i] = setTimeout(beat, heartbeatMs);
        },
        (i * heartbeatMs) / everyone.length,
      ),
    );
    await sleep(heartbeatMs);
    const heartbeatPct = await cpuPercent(pid, window);
    stopped = true;
    for (const timer of beats) clearTimeout(timer);
    return { agents, streamPct, heartbeatPct, heartbeatMs };
  } finally {
    for (const source of sources) source.close();
    await stop(hub.child);
    rmSync(hub.dir, { recursive: true, force: true });
  }
}

async function cpuPercent(pid: number, windowMs: number): Promise<number> {
  const before = cpuClock(pid);
  const t0 = performance.now();
  await sleep(windowMs);
  return (cpuSince(before) / (performance.now() - t0)) * 100;
}

/** Connect in waves of 50, so a thousand handshakes do not land in one tick (and stay under the pending-registration cap). */
async function inWaves(from: number, to: number, one: (i: number) => Promise<void>): Promise<void> {
  for (let start = from; start < to; start += 50) {
    const wave: Promise<void>[] = [];
    for (let i = start; i < Math.min(to, start + 50); i++) wave.push(one(i));
    await Promise.all(wave);
  }
}

/**
 * A process's CPU time, read per thread in nanoseconds (/proc/<pid>/task/<tid>/schedstat)
 * and from /proc/<pid>/stat in 10 ms ticks. A rep of 3,000 prompts is about 250 ms of a
 * relay's CPU, and 10 s of an idle hub at 1 % is 100 ms: a tick is 4 % and 10 % of them.
 * The per-thread clock is used unless a thread ended meanwhile (its time would be
 * missing); the ticks count every thread, ended or not.
 */
interface CpuClock {
  pid: number;
  ticksMs: number;
  threadNs: Map<string, number>;
}

function cpuClock(pid: number): CpuClock {
  const threadNs = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      if (Number.isFinite(ns)) threadNs.set(tid, ns);
    }
  } catch {
    threadNs.clear();
  }
  return { pid, ticksMs: cpuMs(pid), threadNs };
}

/** Milliseconds of CPU the process used since `start`. */
function cpuSince(start: CpuClock): number {
  const now = cpuClock(start.pid);
  const kept = start.threadNs.size > 0 && [...start.threadNs.keys()].every((tid) => now.threadNs.has(tid));
  if (!kept) return now.ticksMs - start.ticksMs;
  let ns = 0;
  for (const [tid, at] of now.threadNs) ns += at - (start.threadNs.get(tid) ?? 0);
  return ns / 1e6;
}

/** CPU time (user + system) the process has used so far, in ms (10 ms ticks). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function cpus(): number {
  return Number(readFileSync("/proc/cpuinfo", "utf8").match(/^processor\s*:/gm)?.length ?? 0);
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Last: every module-level binding above is initialised by now.
await main();

/**
 * Soak: does hub memory level off under steady traffic, and come back when
 * the agents go? A real hub process and SOAK_AGENTS agents on the project's
 * own client (HubClient), exchanging prompt/reply at a steady rate, every
 * message answered; the hub's RSS and V8 heap are printed every
 * SOAK_SAMPLE_SECONDS, then after every agent disconnected and the hub had
 * SOAK_IDLE_SECONDS to drain, then once more after a forced full GC, with a
 * verdict on whether RSS plateaued (its growth over the last third of the run
 * against the first third).
 *
 *   npm run soak                                 (5 minutes, sqlite store)
 *   SOAK_SECONDS=150 SOAK_STORE=memory npm run soak
 *
 * Environment:
 *   SOAK_SECONDS          traffic duration (default 300)
 *   SOAK_AGENTS           agents, each sending and answering (default 40)
 *   SOAK_RATE             messages per second over all agents (default 150)
 *   SOAK_MIN_BYTES / SOAK_MAX_BYTES   prompt size range (default 200 / 2200)
 *   SOAK_STORE            sqlite (default) or memory
 *   SOAK_SAMPLE_SECONDS   sampling period (default 10)
 *   SOAK_IDLE_SECONDS     wait after all agents disconnected (default 75: the
 *                         hub forgets answered messages 60 s after the reply is taken)
 *   SOAK_GC=1             force a full GC in the hub before every sample
 *                         (heap used is then the live heap)
 *   SOAK_SNAPSHOTS=dir    write hub heap snapshots there (start, end of traffic, after idle)
 *   SOAK_HUB_FLAGS        extra Node flags for the hub (e.g. "--max-semi-space-size=8")
 * The hub inherits this process's environment, so e.g. MALLOC_ARENA_MAX=2
 * applies to it. Exit code 1 when RSS did not plateau.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Message } from "../contract/schemas.ts";
import { connectHub, type HubClient } from "../hub/client/hub-client.ts";
import { memoryLine as line, type Memory, MiB, mib, ProbedHub } from "./probed-hub.ts";

const num = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
};
const SECONDS = num("SOAK_SECONDS", 300);
const AGENTS = Math.max(2, num("SOAK_AGENTS", 40));
const RATE = num("SOAK_RATE", 150);
const MIN_BYTES = num("SOAK_MIN_BYTES", 200);
const MAX_BYTES = Math.max(MIN_BYTES, num("SOAK_MAX_BYTES", 2200));
const STORE = process.env.SOAK_STORE ?? "sqlite";
const SAMPLE_MS = num("SOAK_SAMPLE_SECONDS", 10) * 1000;
const IDLE_MS = num("SOAK_IDLE_SECONDS", 75) * 1000;
const FORCE_GC = process.env.SOAK_GC === "1";
const SNAPSHOTS = process.env.SOAK_SNAPSHOTS ? resolve(process.env.SOAK_SNAPSHOTS) : undefined;

interface Sample extends Memory {
  at: number;
  roundTrips: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-soak-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    PI_COMS_NET_DIR: join(dir, "net"),
    PI_COMS_DIR: join(dir, "coms"),
    // Every agent sends; the per-agent send limit is not what this measures.
    PI_COMS_NET_MAX_SENDS_PER_SEC: "0",
  };
  const hub = new ProbedHub(dir, env, ["--project", "soak", "--store", STORE]);
  const agents: HubClient[] = [];
  try {
    await hub.listening();
    if (SNAPSHOTS) mkdirSync(SNAPSHOTS, { recursive: true });
    console.log(
      `soak: ${AGENTS} agents, ${RATE} msg/s, ${MIN_BYTES}-${MAX_BYTES} B prompts, ${SECONDS} s, ${STORE} store, hub pid ${hub.child.pid}` +
        `${FORCE_GC ? ", GC before each sample" : ""}${process.env.MALLOC_ARENA_MAX ? `, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}` : ""}`,
    );
    const before = await hub.memory({ gc: FORCE_GC });
    console.log(line("hub idle", before.memory));
    for (let i = 0; i < AGENTS; i++) {
      const agent = await connectHub({ url: hub.url, token: hub.token, project: "soak", name: `a${i}`, env });
      answerEverything(agent);
      agents.push(agent);
    }
    const connected = await hub.memory({
      gc: FORCE_GC,
      ...(SNAPSHOTS ? { snapshot: join(SNAPSHOTS, "1-connected.heapsnapshot") } : {}),
    });
    console.log(line(`${AGENTS} connected`, connected.memory));
    const traffic = new Traffic(agents);
    const samples = await traffic.run(hub);
    console.log(
      `traffic over: ${traffic.roundTrips} round trips, ${traffic.errors} errors, ${traffic.inFlight} still in flight`,
    );
    await traffic.settle();
    const end = await hub.memory({
      gc: FORCE_GC,
      ...(SNAPSHOTS ? { snapshot: join(SNAPSHOTS, "2-end-of-traffic.heapsnapshot") } : {}),
    });
    console.log(line("end of traffic", end.memory));
    await Promise.all(agents.splice(0).map((agent) => agent.close()));
    const closed = await hub.memory();
    console.log(line("disconnected", closed.memory));
    await sleep(IDLE_MS);
    const idle = await hub.memory();
    console.log(line(`idle ${IDLE_MS / 1000} s`, idle.memory));
    const collected = await hub.memory({
      gc: true,
      ...(SNAPSHOTS ? { snapshot: join(SNAPSHOTS, "3-idle.heapsnapshot") } : {}),
    });
    console.log(line("after full GC", collected.memory));
    const ok = verdict(samples, before.memory, collected.memory);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await Promise.all(agents.map((agent) => agent.close().catch(() => {})));
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every agent answers every message it gets. */
function answerEverything(agent: HubClient): void {
  agent.onInbound((message: Message) => {
    void agent
      .settle(message.msg_id, {
        ok: true,
        text: `re ${message.prompt.length}: ${message.prompt.slice(0, 64)}`,
      })
      .catch(() => {});
  });
}

class Traffic {
  roundTrips = 0;
  errors = 0;
  inFlight = 0;
  private readonly agents: HubClient[];
  private readonly pending = new Set<Promise<void>>();
  private seq = 0;

  constructor(agents: HubClient[]) {
    this.agents = agents;
  }

  /** Send at RATE for SECONDS, sampling the hub every SAMPLE_MS; returns the samples. */
  async run(hub: ProbedHub): Promise<Sample[]> {
    const samples: Sample[] = [];
    const start = performance.now();
    const stopAt = start + SECONDS * 1000;
    let sent = 0;
    let nextSample = start + SAMPLE_MS;
    while (performance.now() < stopAt) {
      const now = performance.now();
      const due = Math.floor(((now - start) / 1000) * RATE);
      while (sent < due) {
        this.one();
        sent++;
      }
      if (now >= nextSample) {
        nextSample += SAMPLE_MS;
        const { memory } = await hub.memory({ gc: FORCE_GC });
        const sample = { ...memory, at: (now - start) / 1000, roundTrips: this.roundTrips };
        samples.push(sample);
        console.log(
          line(
            `t=${Math.round(sample.at)} s`,
            memory,
            `  round trips ${this.roundTrips}  in flight ${this.inFlight}  errors ${this.errors}`,
          ),
        );
      }
      await sleep(10);
    }
    return samples;
  }

  /** Wait for what is in flight. */
  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private one(): void {
    const n = this.agents.length;
    const fromIndex = this.seq % n;
    // Everyone talks to everyone, in a fixed pattern (no two runs differ).
    const toIndex = (fromIndex + 1 + ((this.seq * 7) % (n - 1))) % n;
    const from = this.agents[fromIndex] as HubClient;
    const to = this.agents[toIndex] as HubClient;
    const size = MIN_BYTES + ((this.seq * 7919) % (MAX_BYTES - MIN_BYTES + 1));
    const prompt = `${this.seq} `.padEnd(size, "abcdefghijklmnopqrstuvwxyz0123456789");
    this.seq++;
    this.inFlight++;
    const trip = (async () => {
      try {
        const ack = await from.send({ to: to.self.name, prompt });
        const outcome = await from.await(ack.msg_id, { timeoutMs: 60_000 });
        if (outcome.state === "reply") this.roundTrips++;
        else this.errors++;
      } catch {
        this.errors++;
      } finally {
        this.inFlight--;
      }
    })();
    this.pending.add(trip);
    void trip.finally(() => this.pending.delete(trip));
  }
}

/** Plateau: RSS grew over the last third of the run by at most a quarter of its first-third growth (or 8 MiB). */
function verdict(samples: Sample[], idle: Memory, after: Memory): boolean {
  if (samples.length < 3) {
    console.log("verdict: too few samples for a verdict (run longer)");
    return true;
  }
  const at = (fraction: number) =>
    samples[Math.min(samples.length - 1, Math.round(fraction * (samples.length - 1)))] as Sample;
  const first = at(0);
  const third = at(1 / 3);
  const twoThirds = at(2 / 3);
  const last = samples[samples.length - 1] as Sample;
  const peak = samples.reduce((max, s) => Math.max(max, s.rss), 0);
  const early = third.rss - first.rss;
  const late = last.rss - twoThirds.rss;
  const plateau = late <= Math.max(8 * MiB, early / 4);
  const heaps = samples.map((s) => s.heapUsed);
  console.log(
    `rss: idle ${mib(idle.rss)}, first sample ${mib(first.rss)}, peak ${mib(peak)}, last ${mib(last.rss)}, after disconnect+GC ${mib(after.rss)} MiB`,
  );
  console.log(
    `heap used: first ${mib(first.heapUsed)}, min ${mib(Math.min(...heaps))}, max ${mib(Math.max(...heaps))}, last ${mib(last.heapUsed)}, after GC ${mib(after.heapUsed)} MiB`,
  );
  console.log(
    `rss growth: first third ${mib(early)} MiB (t=${Math.round(first.at)}→${Math.round(third.at)} s), last third ${mib(late)} MiB (t=${Math.round(twoThirds.at)}→${Math.round(last.at)} s)`,
  );
  console.log(`verdict: RSS ${plateau ? "plateaued" : "still growing (no plateau)"}`);
  return plateau;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

await main();

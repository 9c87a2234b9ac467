/**
 * What a long-lived P2P node keeps: two in-process nodes over a real socket,
 * N prompt/reply round trips, then the heap after a full GC and what the
 * nodes report as retained. Each size runs twice: with the default limits,
 * and with the byte limits lifted (count alone, as before they existed), so
 * the two heaps are measured in the same run on the same machine.
 *
 *   node bench/p2p-retention.bench.ts [roundTrips1K] [roundTrips16K]
 */
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { startP2P } from "../peer/node.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

async function run(label: string, roundTrips: number, size: number, env: NodeJS.ProcessEnv): Promise<void> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "pcb-")));
  const fullEnv = { ...process.env, PI_COMS_DIR: join(dir, "coms"), PI_COMS_PING_INTERVAL_MS: "0", ...env };
  const a = await startP2P({ name: "a", project: "bench", env: fullEnv });
  const b = await startP2P({ name: "b", project: "bench", env: fullEnv });
  b.onInbound((message) => {
    void b.settle(message.msg_id, { ok: true, text: `re ${message.prompt}` });
  });
  const body = "x".repeat(size);
  // Warm up (connections, streams, JIT) before the baseline.
  for (let i = 0; i < 50; i++) await a.await((await a.send({ to: "b", prompt: `w${i}` })).msg_id);
  const before = heapMb();
  const started = performance.now();
  const window = 32;
  for (let i = 0; i < roundTrips; i += window) {
    const acks = await Promise.all(
      Array.from({ length: Math.min(window, roundTrips - i) }, (_, j) =>
        a.send({ to: "b", prompt: `${i + j} ${body}` }),
      ),
    );
    await Promise.all(acks.map((ack) => a.await(ack.msg_id, { timeoutMs: 60_000 })));
  }
  const seconds = (performance.now() - started) / 1000;
  const after = heapMb();
  const { settled } = b.retained();
  const { outcomes } = a.retained();
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  console.log(
    `${label.padEnd(34)} ${String(roundTrips).padStart(6)} x ${String(size).padStart(6)} B: heap +${(after - before).toFixed(1)} MB ` +
      `(settled kept ${settled.count} / ${mb(settled.bytes)} MB, outcomes kept ${outcomes.count} / ${mb(outcomes.bytes)} MB, ` +
      `${Math.round(roundTrips / seconds)} rt/s)`,
  );
  await a.close();
  await b.close();
  rmSync(dir, { recursive: true, force: true });
}

const small = Number(process.argv[2] ?? 20_000);
const large = Number(process.argv[3] ?? 1_500);
const unlimitedBytes = {
  PI_COMS_KEEP_SETTLED_BYTES: String(Number.MAX_SAFE_INTEGER),
  PI_COMS_KEEP_OUTCOMES_BYTES: String(Number.MAX_SAFE_INTEGER),
};
await run("defaults", small, 1024, {});
await run("byte limits lifted", small, 1024, unlimitedBytes);
await run("defaults", large, 16 * 1024, {});
await run("byte limits lifted", large, 16 * 1024, unlimitedBytes);
await run("small limits (1000 / 4 MiB)", large, 16 * 1024, {
  PI_COMS_KEEP_SETTLED: "1000",
  PI_COMS_KEEP_OUTCOMES: "1000",
  PI_COMS_KEEP_SETTLED_BYTES: String(4 * 1024 * 1024),
  PI_COMS_KEEP_OUTCOMES_BYTES: String(4 * 1024 * 1024),
});

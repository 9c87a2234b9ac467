/**
 * Failover timing on a real Redis with three real hubs at the default lease
 * (5 s): senders keep sending to nine recipients spread over the hubs, the
 * lease holder is stopped (SIGSTOP, for FAILOVER_STOP_MS, default 45 s) or
 * killed (-9), and the bench prints, per case, how long after that each
 * recipient's deliveries resumed (the slowest and the median) against the
 * lease time. Needs redis-server on PATH.
 *
 *   node bench/failover.ts
 */
import type { Message } from "../contract/schemas.ts";
import type { HubClient } from "../hub/client/hub-client.ts";
import { type HubProcess, HubWorld, sendSurely, waitFor } from "../test/support/hub-harness.ts";
import { startRedis } from "../test/support/redis-server.ts";

const TOKEN = "failover-bench-token-0123456789abcdef";
const LEASE_MS = 5_000;
const STOP_MS = Number(process.env.FAILOVER_STOP_MS ?? 45_000);
const RECIPIENTS = 9;
const SENDERS = 3;

async function run(how: "SIGSTOP" | "SIGKILL", redisUrl: string): Promise<void> {
  const w = new HubWorld({ PI_COMS_NET_AUTH_TOKEN: TOKEN });
  const project = `failover-${how.toLowerCase()}`;
  let holder: HubProcess | undefined;
  let sending = true;
  try {
    const hubs: HubProcess[] = [];
    for (let i = 0; i < 3; i++) hubs.push(await w.startHub({ project, args: ["--store", redisUrl] }));
    holder = hubs[0] as HubProcess;
    const list = hubs.map((hub) => hub.url).join(",");
    const arrivals = new Map<string, number[]>();
    const recipients: HubClient[] = [];
    for (let i = 0; i < RECIPIENTS; i++) {
      const name = `r${i}`;
      const client = await w.connect(holder, { url: list, name });
      arrivals.set(name, []);
      client.onInbound((message: Message) => {
        arrivals.get(name)?.push(Date.now());
        void client.settle(message.msg_id, { ok: true, text: "ok" }).catch(() => {});
      });
      recipients.push(client);
    }
    const senders = await Promise.all(
      Array.from({ length: SENDERS }, (_, i) =>
        w.connect(holder as HubProcess, { url: list, name: `s${i}` }),
      ),
    );
    const loops = senders.map(async (sender, s) => {
      for (let n = 0; sending; n++) {
        const to = `r${(n * SENDERS + s) % RECIPIENTS}`;
        await sendSurely(sender, to, String(n)).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    });
    await waitFor(() => [...arrivals.values()].every((times) => times.length > 0), {
      what: "deliveries to every recipient",
      timeoutMs: 30_000,
    });
    const onHolder = recipients.filter((client) => client.url === holder?.url).length;
    const t0 = Date.now();
    process.kill(holder.pid, how);
    // Whatever was already on its way when the holder went arrives within a moment; after that only a new holder delivers.
    const after = t0 + 300;
    await waitFor(() => [...arrivals.values()].every((times) => times.some((t) => t > after)), {
      what: "deliveries to resume for every recipient",
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    const resumed = [...arrivals.values()]
      .map((times) => (times.find((t) => t > after) as number) - t0)
      .sort((a, b) => a - b);
    const median = resumed[Math.floor(resumed.length / 2)] as number;
    const slowest = resumed[resumed.length - 1] as number;
    console.log(
      `${how.padEnd(8)} of the holder  lease ${LEASE_MS} ms  recipients ${RECIPIENTS} (${onHolder} on the holder's port)  ` +
        `deliveries resumed: median ${median} ms, slowest ${slowest} ms  ` +
        `(slowest − lease ${slowest - LEASE_MS} ms; target ≤ ${how === "SIGSTOP" ? "3000" : "about 0"})`,
    );
    if (how === "SIGSTOP") {
      const rest = STOP_MS - (Date.now() - t0);
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
      process.kill(holder.pid, "SIGCONT");
    }
    sending = false;
    await Promise.all(loops);
  } finally {
    sending = false;
    if (how === "SIGSTOP" && holder && holder.child.exitCode === null) process.kill(holder.pid, "SIGCONT");
    await w.dispose();
  }
}

const redis = await startRedis();
try {
  await run("SIGSTOP", redis.url);
  await run("SIGKILL", redis.url);
} finally {
  await redis.dispose();
}

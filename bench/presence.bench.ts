/**
 * Presence storm: N agents register (64 at a time), each opening its inbox
 * stream right after, as a crowd of scripts starting at once does. Two arms,
 * each on a fresh hub: every stream takes peers changes (what every client
 * asked for before, and a client watching presence still does), and streams
 * of clients that do not watch presence (`peers: false`, what the hub client
 * sends unless someone calls onPeers). Prints the time until all registered
 * and the last event arrived, the bytes and peers events all streams
 * received together, and the hub's RSS. Raw HTTP clients, so the bench
 * measures the hub. Presence timing is stretched so agents that do not
 * heartbeat stay online: the storm is registrations only.
 * PRESENCE_AGENTS (default 5000), PRESENCE_CONCURRENCY, PRESENCE_ARMS (all|watch|quiet).
 *
 *   node bench/presence.bench.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, get, type IncomingMessage, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mib, ProbedHub } from "./probed-hub.ts";

const AGENTS = Number(process.env.PRESENCE_AGENTS ?? 5000);
const CONCURRENCY = Number(process.env.PRESENCE_CONCURRENCY ?? 64);
const QUIET_MS = 1_500;

const ARMS = process.env.PRESENCE_ARMS ?? "all";

const calls = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
let hub: ProbedHub;
let streams: IncomingMessage[] = [];
let bytes = 0;
let events = 0;
let lastByteAt = 0;

function post(path: string, body: unknown): Promise<unknown> {
  const payload = JSON.stringify({ json: body });
  return new Promise((resolve, reject) => {
    const req = request(
      `${hub.url}${path}`,
      {
        method: "POST",
        agent: calls,
        headers: {
          authorization: `Bearer ${hub.token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`${path}: HTTP ${res.statusCode} ${text}`));
          resolve((JSON.parse(text) as { result: { data: { json: unknown } } }).result.data.json);
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** Open an agent's inbox stream; resolves once the hub has taken it (its `connected` event). */
function openStream(id: string, agentToken: string, peers: boolean): Promise<void> {
  const wanted = peers ? { lastEventId: null } : { lastEventId: null, peers: false };
  const input = encodeURIComponent(JSON.stringify({ json: wanted }));
  return new Promise((resolve, reject) => {
    const req = get(
      `${hub.url}/trpc/messages.inbox?input=${input}`,
      {
        agent: false,
        headers: {
          authorization: `Bearer ${hub.token}`,
          "x-pi-coms-agent-id": id,
          "x-pi-coms-agent-token": agentToken,
          accept: "text/event-stream",
        },
      },
      (res) => {
        streams.push(res);
        let carry = "";
        let connected = false;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          bytes += Buffer.byteLength(chunk);
          lastByteAt = performance.now();
          // Events end with a blank line (tRPC frames them "\n\n\n"); a chunk may end inside one.
          const parts = (carry + chunk).split("\n\n\n");
          carry = parts.pop() ?? "";
          for (const part of parts) {
            if (part.includes('"kind":"peers"')) events++;
            else if (!connected && part.startsWith("event: connected")) {
              connected = true;
              resolve();
            }
          }
        });
      },
    );
    req.on("error", reject);
  });
}

async function arm(label: string, peers: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-presence-"));
  const env = {
    ...process.env,
    HOME: dir,
    PI_COMS_NET_DIR: join(dir, "net"),
    PI_COMS_DIR: join(dir, "coms"),
    PI_COMS_NET_STALE_AFTER_MS: "3600000",
    PI_COMS_NET_OFFLINE_AFTER_MS: "7200000",
  };
  hub = new ProbedHub(dir, env, [
    ...["--project", "presence", "--store", "memory", "--max-agents", String(AGENTS + 10)],
    ...["--max-pending-registrations", "0"],
  ]);
  streams = [];
  bytes = 0;
  events = 0;
  lastByteAt = 0;
  await hub.listening();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < AGENTS) {
      const i = next++;
      const result = (await post("/trpc/agents.register", { name: `a${i}`, project: "presence" })) as {
        card: { id: string };
        agent_token: string;
      };
      await openStream(result.card.id, result.agent_token, peers);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const registered = performance.now() - started;
  // The storm is over once no stream has received anything for a while.
  while (performance.now() - Math.max(lastByteAt, started + registered) < QUIET_MS) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const settled = Math.max(lastByteAt, started + registered) - started;
  const { memory } = await hub.memory();
  console.log(
    `${label.padEnd(30)} ${AGENTS} agents  registered in ${(registered / 1000).toFixed(1)} s  ` +
      `last presence event at ${(settled / 1000).toFixed(1)} s  stream bytes ${mib(bytes)} MiB  ` +
      `presence events ${events} (${(events / AGENTS).toFixed(1)} per stream)  hub rss ${mib(memory.rss)} MiB`,
  );
  for (const stream of streams) stream.destroy();
  await hub.stop();
  rmSync(dir, { recursive: true, force: true });
}

if (ARMS === "all" || ARMS === "watch") await arm("every stream takes presence", true);
if (ARMS === "all" || ARMS === "quiet") await arm("streams not watching presence", false);
calls.destroy();

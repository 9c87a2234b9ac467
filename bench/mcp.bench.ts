/**
 * MCP benchmark: a round trip through the MCP front end (the SDK's Client
 * → coms_send + coms_await → peer → reply) against the typed client on the
 * same path, in the same run, printed as a ratio. Two paths:
 *   P2P: SDK Client over stdio → `pi-coms mcp` process → Unix socket → echo peer,
 *        vs a typed P2P client in this process → the same echo peer;
 *   hub: SDK Client over Streamable HTTP → the hub's /mcp → echo agent,
 *        vs a typed hub client → the same hub → the same echo agent.
 * Paths are measured in alternating blocks so load from other processes
 * hits them alike; the load average is printed.
 *   node bench/mcp.bench.ts          (or: npm run bench -- mcp)
 */
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startP2P } from "../peer/node.ts";
import { echo, HubWorld } from "../test/support/hub-harness.ts";
import { McpPeer, StdioBridge, sentId } from "../test/support/mcp-bridge.ts";
import { PeerProcess } from "../test/support/p2p-harness.ts";

const ROUND_TRIPS = 400;
const BLOCK = 50;
const WARMUP = 50;
const PROMPT = "please review the retry logic in src/net/retry.ts";

function stats(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

async function sequential(n: number, once: () => Promise<unknown>, into: number[] = []): Promise<number[]> {
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await once();
    into.push(performance.now() - start);
  }
  return into;
}

/** One round trip through MCP tools: send, then await the reply (two tool calls, as an agent makes them). */
function mcpRoundTrip(peer: McpPeer, to: string): () => Promise<void> {
  return async () => {
    const msgId = sentId(await peer.ok("coms_send", { to, prompt: PROMPT }));
    const reply = await peer.ok("coms_await", { msg_id: msgId });
    if (!reply.includes(PROMPT)) throw new Error(`unexpected reply: ${reply}`);
  };
}

async function compare(
  label: string,
  typed: () => Promise<unknown>,
  mcp: () => Promise<unknown>,
): Promise<void> {
  await sequential(WARMUP, typed);
  await sequential(WARMUP, mcp);
  const samples = { typed: [] as number[], mcp: [] as number[] };
  for (let block = 0; block < ROUND_TRIPS / BLOCK; block++) {
    await sequential(BLOCK, typed, samples.typed);
    await sequential(BLOCK, mcp, samples.mcp);
  }
  const t = stats(samples.typed);
  const m = stats(samples.mcp);
  const ms = (v: number) => `${v.toFixed(2).padStart(7)} ms`;
  console.log(`${label}: typed client  p50 ${ms(t.p50)}  p99 ${ms(t.p99)}`);
  console.log(`${label}: MCP tools     p50 ${ms(m.p50)}  p99 ${ms(m.p99)}`);
  console.log(
    `${label}: MCP / typed round trip: p50 ${(m.p50 / t.p50).toFixed(2)}×, p99 ${(m.p99 / t.p99).toFixed(2)}×`,
  );
}

const dir = realpathSync(mkdtempSync(join(tmpdir(), "pcm-")));
const loadBefore = loadavg()[0]?.toFixed(2);
const world = new HubWorld();
let peer: PeerProcess | undefined;
try {
  // P2P: an echo peer in a child process; the typed client here; the bridge as its own process.
  const env = { ...process.env, PI_COMS_DIR: join(dir, "coms"), PI_COMS_PING_INTERVAL_MS: "0" };
  peer = new PeerProcess(env);
  await peer.call("start", { opts: { name: "echo", project: "bench" } });
  await peer.call("autoReply", { on: true, quiet: true });
  const node = await startP2P({ name: "typed", project: "bench", env });
  const bridge = await StdioBridge.start(["--project", "bench", "--name", "mcp"], env);
  await compare(
    "P2P",
    async () => node.await((await node.send({ to: "echo", prompt: PROMPT })).msg_id, { timeoutMs: 10_000 }),
    mcpRoundTrip(bridge, "echo"),
  );
  await bridge.close();
  await node.close();

  // Hub: an echo agent on a hub process; a typed hub client vs an MCP session on the hub's /mcp.
  const hub = await world.startHub({ project: "bench" });
  echo(await world.connect(hub, "echo"));
  const typed = await world.connect(hub, "typed");
  const remote = new McpPeer("bench");
  const transport = new StreamableHTTPClientTransport(new URL(`${hub.url}/mcp?name=mcp`), {
    requestInit: { headers: { authorization: `Bearer ${hub.token}` } },
  });
  await remote.connect(transport);
  await compare(
    "hub",
    async () => typed.await((await typed.send({ to: "echo", prompt: PROMPT })).msg_id, { timeoutMs: 10_000 }),
    mcpRoundTrip(remote, "echo"),
  );
  await transport.terminateSession();
  await remote.client.close();
  console.log(`load average before/after: ${loadBefore} / ${loadavg()[0]?.toFixed(2)} (2 cores)`);
} finally {
  peer?.child.kill("SIGKILL");
  await world.dispose();
  rmSync(dir, { recursive: true, force: true });
}

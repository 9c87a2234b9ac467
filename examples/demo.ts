/**
 * `npm start` / `npm run demo`: a hub and two scripted agents (no LLM) find
 * each other and trade a prompt and a reply, first over P2P sockets, then
 * over the hub. Everything lives in a throwaway directory that is checked
 * and removed at the end: no socket, registry entry or hub process survives.
 */
import { lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ComsClient, connectHub, connectPeer, serve } from "../client/index.ts";
import { ensureHub, stopHub } from "../hub/client/discovery.ts";
import { pidAlive as alive } from "../lib/process.ts";

const root = mkdtempSync(join(tmpdir(), "pi-coms-demo-"));
// Set on process.env too, so nothing can fall back to the user's real ~/.pi.
process.env.PI_COMS_DIR = join(root, "coms");
process.env.PI_COMS_NET_DIR = join(root, "coms-net");
delete process.env.PI_COMS_NET_SERVER_URL;
delete process.env.PI_COMS_NET_AUTH_TOKEN;
const env = process.env;
const project = "pi-coms-demo";

const say = (who: string, text: string) => console.log(`  [${who}] ${text}`);

async function waitForPeer(client: ComsClient, name: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const peers = await client.list();
    const peer = peers.find((p) => p.name === name);
    if (peer) {
      say(client.self.name, `found ${peer.name} (${peer.purpose}) among ${peers.length} agent(s)`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${client.self.name} did not find ${name} within 15 s`);
}

/** The reviewer answers every prompt; the coder asks one question and waits for the reply. */
async function exchange(reviewer: ComsClient, coder: ComsClient): Promise<void> {
  const serving = serve(reviewer, (message) => {
    say(reviewer.self.name, `got from ${message.from}: "${message.prompt}"`);
    return `Looks good. One nit: name the helper retryWithBackoff. (${reviewer.transport})`;
  });
  try {
    await waitForPeer(coder, reviewer.self.name);
    const prompt = "Please review: I added a retry loop around fetchUser().";
    say(coder.self.name, `asks ${reviewer.self.name}: "${prompt}"`);
    const ack = await coder.send({ to: reviewer.self.name, prompt });
    say(coder.self.name, `${ack.to} accepted msg ${ack.msg_id}; awaiting the reply`);
    const outcome = await coder.await(ack.msg_id, { timeoutMs: 15_000 });
    if (outcome.state !== "reply") {
      throw new Error(
        `no reply: ${outcome.state === "error" ? `${outcome.code} ${outcome.message}` : "pending"}`,
      );
    }
    say(coder.self.name, `reply from ${outcome.from}: "${outcome.text}"`);
  } finally {
    await serving.stop();
  }
}

/** A reviewer and a coder, both connected with `connect`, trade one prompt and leave. */
async function pair(
  connect: (opts: {
    project: string;
    name: string;
    purpose: string;
    explicit: boolean;
    env: NodeJS.ProcessEnv;
  }) => Promise<ComsClient>,
): Promise<void> {
  const reviewer = await connect({
    project,
    name: "reviewer",
    purpose: "code reviewer",
    explicit: false,
    env,
  });
  const coder = await connect({
    project,
    name: "coder",
    purpose: "implements features",
    explicit: false,
    env,
  });
  try {
    await exchange(reviewer, coder);
  } finally {
    await coder.close();
    await reviewer.close();
  }
}

/**
 * What a clean exit must not leave: sockets, P2P registry entries
 * (agents/<name>.json) and the hub's discovery file (server.json). The hub's
 * secret, store and log are data, not leftovers, and go with the scratch dir.
 */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (lstatSync(full).isSocket()) found.push(`${full} (socket)`);
      else if (/\/agents\/[^/]+\.json$/.test(full) || entry.name === "server.json") found.push(full);
    }
  };
  try {
    walk(dir);
  } catch {
    // A directory nobody created has nothing left in it.
  }
  return found;
}

let hubPid: number | undefined;
let failed = false;
try {
  console.log(`pi-coms demo: two scripted agents, no LLM (scratch dir ${root})\n`);

  console.log("P2P over Unix sockets:");
  await pair(connectPeer);

  console.log("\nHub over HTTP + SSE:");
  const hub = await ensureHub({ project, env });
  hubPid = hub.pid;
  say("hub", `${hub.startedByMe ? "started" : "found"} at ${hub.url} (pid ${hub.pid})`);
  await pair(connectHub);
} catch (error) {
  failed = true;
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  await stopHub(project, env).catch((error: unknown) => {
    failed = true;
    console.error(`could not stop the hub: ${String(error)}`);
  });
  const deadline = Date.now() + 5_000;
  while (hubPid !== undefined && alive(hubPid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const left = [
    ...leftovers(join(root, "coms")),
    ...leftovers(join(root, "coms-net")),
    ...(hubPid !== undefined && alive(hubPid) ? [`hub process ${hubPid}`] : []),
  ];
  if (left.length > 0) {
    failed = true;
    console.error(`\nleft behind:\n${left.map((l) => `  ${l}`).join("\n")}`);
  } else {
    console.log("\ncleanup: agents left, hub stopped; no sockets, registry entries or hub process remain.");
  }
  rmSync(root, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;

/**
 * `pi-coms mcp --hub`: the bridge joins a real hub process (URL and token
 * given, or the project's discovered hub), driven by the official SDK's
 * Client over stdio; held prompts end PEER_GONE when the bridge leaves,
 * is stopped, or is killed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HubClient } from "../hub/client/hub-client.ts";
import { echo, type HubProcess, HubWorld, waitFor } from "./support/hub-harness.ts";
import { alive, promptId, StdioBridge, sentId } from "./support/mcp-bridge.ts";

// Fast presence, so a killed bridge is known gone in about a second.
const world = new HubWorld({
  PI_COMS_NET_HEARTBEAT_MS: "100",
  PI_COMS_NET_STALE_AFTER_MS: "400",
  PI_COMS_NET_OFFLINE_AFTER_MS: "1000",
});
const bridges: StdioBridge[] = [];
let hub: HubProcess;
let boss: HubClient;

async function bridge(args: string[], env: Record<string, string> = {}, client?: string) {
  const b = await StdioBridge.start(["--project", hub.project, ...args], { ...world.env, ...env }, client);
  bridges.push(b);
  return b;
}

before(async () => {
  hub = await world.startHub();
  boss = await world.connect(hub, "boss");
  echo(await world.connect(hub, "echo"));
});

after(async () => {
  for (const b of bridges) await b.close();
  await world.dispose();
});

describe("pi-coms mcp --hub", () => {
  it("joins by URL and token: list, send/await, receive/reply, channel push", async () => {
    const b = await bridge(["--hub", hub.url, "--auth-token", hub.token], {}, "codex-mcp-client");
    const list = await b.ok("coms_list");
    assert.match(list, /- echo: /);
    assert.match(list, /on the pi-coms hub/);
    const card = (await boss.list()).find((p) => p.name === "codex-mcp-client");
    assert.equal(card?.model, "codex-mcp-client 1.0.0 (MCP)");

    const msgId = sentId(await b.ok("coms_send", { to: "echo", prompt: "ping", conversation_id: "k" }));
    assert.match(await b.ok("coms_await", { msg_id: msgId }), /re: ping/);

    const ack = await boss.send({ to: "codex-mcp-client", prompt: "your turn" });
    assert.equal((await b.channelFor(ack.msg_id)).meta.sender, "boss");
    const got = await b.ok("coms_receive", {});
    assert.equal(promptId(got), ack.msg_id);
    assert.match(got, /via="hub"/);
    await b.ok("coms_reply", { msg_id: ack.msg_id, text: "done" });
    const outcome = await boss.await(ack.msg_id);
    assert.equal(outcome.state === "reply" && outcome.text, "done");

    const unknown = await b.call("coms_send", { to: "nobody", prompt: "hi" });
    assert.equal(unknown.isError, true);
    assert.match(unknown.text, /UNKNOWN_PEER/);
  });

  it("a bare --hub finds the project's hub and its token on disk", async () => {
    const b = await bridge(["--hub", "--name", "local"]);
    assert.match(await b.ok("coms_list"), /- boss: /);
  });

  it("a wrong token is told as UNAUTHORIZED by the tools", async () => {
    const b = await bridge(["--hub", hub.url, "--auth-token", "x".repeat(32), "--name", "stranger"]);
    const result = await b.call("coms_list");
    assert.equal(result.isError, true);
    assert.match(result.text, /UNAUTHORIZED/);
  });

  it("the MCP client disconnecting: the agent leaves and its held prompt ends PEER_GONE", async () => {
    const b = await bridge(["--hub", "--name", "leaver"]);
    await b.ok("coms_list");
    const ack = await boss.send({ to: "leaver", prompt: "hold" });
    await b.channelFor(ack.msg_id);
    await b.close();
    const outcome = await boss.await(ack.msg_id);
    assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE");
    await waitFor(
      async () => !(await boss.list({ include_explicit: true })).some((p) => p.name === "leaver"),
      {
        what: "leaver gone",
      },
    );
  });

  it("SIGTERM to the bridge settles what it held PEER_GONE", async () => {
    const b = await bridge(["--hub", "--name", "stopped"]);
    await b.ok("coms_list");
    const ack = await boss.send({ to: "stopped", prompt: "hold" });
    assert.equal(promptId(await b.ok("coms_receive", {})), ack.msg_id);
    process.kill(b.pid, "SIGTERM");
    const outcome = await boss.await(ack.msg_id);
    assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE");
    await waitFor(() => !alive(b.pid), { what: "the bridge to exit" });
  });

  it("the bridge killed while holding a prompt ends the sender's await PEER_GONE", async () => {
    const b = await bridge(["--hub", "--name", "killed"]);
    await b.ok("coms_list");
    const ack = await boss.send({ to: "killed", prompt: "hold" });
    assert.equal(promptId(await b.ok("coms_receive", {})), ack.msg_id);
    process.kill(b.pid, "SIGKILL");
    const outcome = await boss.await(ack.msg_id);
    assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE");
  });
});

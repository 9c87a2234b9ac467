/**
 * The hub's /mcp route over Streamable HTTP, on Node and Bun hub processes,
 * driven by the official SDK's Client: the hub token (401, lockout 429),
 * one session as one agent (named after its client or by the URL's query),
 * every tool against a real typed peer, the channel push on the session's
 * stream, and the session closing making the agent leave with what it
 * held ended PEER_GONE. Also through any hub of a Redis deployment.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { echo, type HubProcess, HubWorld, type Runtime, raw, waitFor } from "./support/hub-harness.ts";
import { McpPeer, promptId, sentId } from "./support/mcp-bridge.ts";
import { startRedis } from "./support/redis-server.ts";

const worlds: HubWorld[] = [];
const peers: McpPeer[] = [];
after(async () => {
  for (const peer of peers) await peer.client.close().catch(() => undefined);
  for (const world of worlds) await world.dispose();
});

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
});

function post(url: string, token: string | null) {
  return fetch(`${url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: INITIALIZE,
  });
}

/** The hub's gauge of open /mcp sessions, from /metrics. */
async function mcpSessions(hub: HubProcess): Promise<number> {
  const text = (await raw(hub.url, "/metrics", { token: hub.token })).text;
  const value = /^pi_coms_mcp_sessions (\d+)$/m.exec(text)?.[1];
  assert.ok(value !== undefined, "pi_coms_mcp_sessions is in /metrics");
  return Number(value);
}

async function joinByUrl(
  url: string,
  token: string,
  query = "",
  name = "remote-client",
): Promise<{ peer: McpPeer; transport: StreamableHTTPClientTransport }> {
  const peer = new McpPeer(name);
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp${query}`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await peer.connect(transport);
  peers.push(peer);
  return { peer, transport };
}

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`the hub's /mcp (${runtime} hub)`, () => {
    let world: HubWorld;
    let hub: HubProcess;

    it("needs the hub token: none or a wrong one is 401, repeated wrong ones are locked out (429)", async () => {
      world = new HubWorld();
      worlds.push(world);
      hub = await world.startHub({ runtime });
      assert.equal((await post(hub.url, null)).status, 401);
      const wrong = await post(hub.url, "w".repeat(32));
      assert.equal(wrong.status, 401);
      assert.equal(wrong.headers.get("www-authenticate"), "Bearer");
      let status = 401;
      for (let i = 0; i < 30 && status === 401; i++) status = (await post(hub.url, "w".repeat(32))).status;
      assert.equal(status, 429, "the same lockout as every hub request");
      assert.equal((await post(hub.url, hub.token)).status, 200, "the right token is always served");
    });

    it("one session is one agent: every tool, the channel push, and the session closing ends what it held PEER_GONE", async () => {
      const boss = await world.connect(hub, "boss");
      echo(await world.connect(hub, "echo"));
      const { peer, transport } = await joinByUrl(hub.url, hub.token, "?name=remote&purpose=reviews%20code");
      const { tools } = await peer.client.listTools();
      assert.equal(tools.length, 6);
      assert.deepEqual(peer.client.getServerCapabilities()?.experimental?.["claude/channel"], {});

      const list = await peer.ok("coms_list");
      assert.match(list, /- echo: /);
      assert.match(list, /you are remote/);
      const card = (await boss.list()).find((p) => p.name === "remote");
      assert.equal(card?.purpose, "reviews code");
      assert.equal(card?.model, "remote-client 1.0.0 (MCP)");

      const msgId = sentId(
        await peer.ok("coms_send", { to: "echo", prompt: "over http", conversation_id: "h1" }),
      );
      assert.match(await peer.ok("coms_await", { msg_id: msgId }), /re: over http/);
      assert.match(await peer.ok("coms_get", { msg_id: msgId }), /re: over http/);
      const unknown = await peer.call("coms_send", { to: "nobody", prompt: "x" });
      assert.equal(unknown.isError, true);
      assert.match(unknown.text, /UNKNOWN_PEER/);

      const ask = await boss.send({ to: "remote", prompt: "answer me" });
      const event = await peer.channelFor(ask.msg_id);
      assert.equal(event.meta.sender, "boss");
      assert.equal(promptId(await peer.ok("coms_receive", {})), ask.msg_id);
      await peer.ok("coms_reply", { msg_id: ask.msg_id, text: "answered" });
      const answered = await boss.await(ask.msg_id);
      assert.equal(answered.state === "reply" && answered.text, "answered");

      const held = await boss.send({ to: "remote", prompt: "hold" });
      await peer.channelFor(held.msg_id);
      await transport.terminateSession();
      const outcome = await boss.await(held.msg_id);
      assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE");
      await waitFor(
        async () => !(await boss.list({ include_explicit: true })).some((p) => p.name === "remote"),
        {
          what: "the agent gone with its session",
        },
      );
      const gone = await fetch(`${hub.url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${hub.token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": transport.sessionId ?? "none",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
      });
      assert.equal(gone.status, 404, "a closed session is not found");
    });

    it("refuses a bad identity in the query and an oversized body", async () => {
      const bad = await fetch(`${hub.url}/mcp?name=${encodeURIComponent("no spaces")}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${hub.token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: INITIALIZE,
      });
      assert.equal(bad.status, 400);
      const big = await fetch(`${hub.url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${hub.token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }),
      });
      assert.equal(big.status, 413);
    });
  });
}

describe("the hub's /mcp on Redis", { timeout: 120_000 }, () => {
  it("works through any hub: a session on the standby hub reaches agents on the active one", async () => {
    const redis = await startRedis();
    const world = new HubWorld({ PI_COMS_NET_AUTH_TOKEN: "mcp-cluster-token-0123456789abcdef" });
    worlds.push(world);
    world.defer(() => redis.dispose());
    // A long lease: under load a short one can fail over mid-test, and sessions live on the active hub.
    const args = ["--store", redis.url, "--lease-ms", "15000"];
    const a = await world.startHub({ project: "mcp-cluster", args });
    const b = await world.startHub({ project: "mcp-cluster", args });
    echo(await world.connect(a, "echo"));
    for (const hub of [a, b]) {
      const { peer, transport } = await joinByUrl(hub.url, hub.token, `?name=via-${hub.port}`);
      const msgId = sentId(await peer.ok("coms_send", { to: "echo", prompt: `through ${hub.port}` }));
      assert.match(await peer.ok("coms_await", { msg_id: msgId }), new RegExp(`re: through ${hub.port}`));
      await transport.terminateSession();
    }
  });
});

describe("the hub's /mcp bounds", () => {
  it("caps open sessions (503) and closes an idle one, whose agent leaves", async () => {
    const world = new HubWorld({ PI_COMS_NET_MAX_MCP_SESSIONS: "1", PI_COMS_NET_MCP_IDLE_MS: "1500" });
    worlds.push(world);
    const hub = await world.startHub();
    const boss = await world.connect(hub, "boss");
    const first = await post(hub.url, hub.token);
    assert.equal(first.status, 200);
    await first.text();
    const session = first.headers.get("mcp-session-id") ?? "";
    const initialized = await fetch(`${hub.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${hub.token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-06-18",
      },
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    });
    assert.equal(initialized.status, 202);
    await waitFor(async () => (await boss.list()).some((p) => p.name === "raw"), { what: "the raw agent" });
    assert.equal((await post(hub.url, hub.token)).status, 503, "one session at most");
    assert.equal(await mcpSessions(hub), 1, "the refused one is not counted");
    // No request and no stream: the session expires, the agent leaves, and a new session fits again.
    await waitFor(async () => !(await boss.list({ include_explicit: true })).some((p) => p.name === "raw"), {
      what: "the idle session's agent to leave",
    });
    assert.equal(await mcpSessions(hub), 0);
    assert.equal((await post(hub.url, hub.token)).status, 200);
  });
});

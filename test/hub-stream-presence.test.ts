/**
 * Presence without heartbeat traffic: an open inbox stream keeps an agent
 * online, so an idle connected client sends nothing; once its stream is
 * gone, the agent goes stale and then offline on the usual settings
 * (PI_COMS_NET_STALE_AFTER_MS, PI_COMS_NET_OFFLINE_AFTER_MS).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { InboxEvent } from "../contract/schemas.ts";
import { connectHub } from "../hub/client/hub-client.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { CuttableProxy } from "./support/hub-proxy.ts";
import { rawAgent, rawClient } from "./support/hub-raw-client.ts";

const PRESENCE = {
  PI_COMS_NET_STALE_AFTER_MS: "400",
  PI_COMS_NET_OFFLINE_AFTER_MS: "1000",
  PI_COMS_NET_HEARTBEAT_MS: "100",
};

describe("presence from the inbox stream", () => {
  const world = new HubWorld(PRESENCE);
  after(() => world.dispose());

  it("an idle connected client makes no requests over many heartbeat intervals and stays online", async () => {
    const hub = await world.startHub({ project: "idle" });
    const proxy = await CuttableProxy.start(hub.port);
    world.defer(() => proxy.close());
    const idle = await connectHub({
      url: proxy.url,
      token: hub.token,
      project: "idle",
      name: "idle",
      env: world.env,
    });
    world.defer(() => idle.close());
    const peers: string[] = [];
    idle.onPeers((cards) => peers.push(...cards.map((card) => card.name)));
    await waitFor(() => proxy.requests.some((line) => line.includes("agents.list")), {
      what: "the first list",
    });
    const watcher = await rawAgent(hub.url, hub.token, "watcher");
    // Heard over idle's stream: the stream is open.
    await waitFor(() => peers.includes("watcher"), { what: "the watcher's card on idle's stream" });
    const statusOf = async (name: string) =>
      (await watcher.client.agents.list.query({ include_explicit: false })).find((card) => card.name === name)
        ?.status;
    assert.equal(await statusOf("idle"), "online");
    const start = proxy.requests.length;
    // An agent without a stream or heartbeats goes offline after 1 s: ten of idle's heartbeat intervals.
    await rawAgent(hub.url, hub.token, "silent");
    await waitFor(async () => (await statusOf("silent")) === "offline", { what: "silent offline" });
    assert.deepEqual(proxy.requests.slice(start), [], "no request from the idle client");
    assert.equal(await statusOf("idle"), "online");
    // A change on the card still goes at once.
    idle.updateCard({ context_used_pct: 12 });
    await waitFor(
      async () => {
        const cards = await watcher.client.agents.list.query({ include_explicit: false });
        return cards.find((card) => card.name === "idle")?.context_used_pct === 12;
      },
      { what: "the card change" },
    );
    assert.equal(proxy.requests.slice(start).length, 1, "one request: the card change");
  });

  it("an agent whose stream dies goes stale, then offline", async () => {
    const hub = await world.startHub({ project: "dies" });
    const watcher = await rawAgent(hub.url, hub.token, "watcher");
    const statusOf = async (name: string) =>
      (await watcher.client.agents.list.query({ include_explicit: false })).find((card) => card.name === name)
        ?.status;
    // A client that counts on its stream for presence says so when it registers.
    const registered = await rawClient(hub.url, hub.token).agents.register.mutate({
      name: "doomed",
      presence: "stream",
    });
    const doomed = {
      client: rawClient(hub.url, hub.token, { id: registered.card.id, agentToken: registered.agent_token }),
    };
    let connected = false;
    const sub = doomed.client.messages.inbox.subscribe(
      { lastEventId: null },
      {
        onStarted: () => {
          connected = true;
        },
        onData: (_event: { data: InboxEvent }) => {},
      },
    );
    await waitFor(() => connected, { what: "doomed's stream" });
    // Longer than the offline time with no heartbeat at all: the stream alone keeps it online.
    await rawAgent(hub.url, hub.token, "silent");
    await waitFor(async () => (await statusOf("silent")) === "offline", { what: "silent offline" });
    assert.equal(await statusOf("doomed"), "online");
    sub.unsubscribe();
    await waitFor(async () => (await statusOf("doomed")) === "stale", { what: "doomed stale" });
    await waitFor(async () => (await statusOf("doomed")) === "offline", { what: "doomed offline" });
  });
});

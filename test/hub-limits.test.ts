import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ComsError } from "../contract/errors.ts";
import { toComsError } from "../contract/errors.ts";
import type { AgentCard, InboxEvent } from "../contract/schemas.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

async function setup(env: Record<string, string>, args: string[] = []) {
  const world = new HubWorld(env);
  worlds.push(world);
  const hub = await world.startHub({ args });
  const connect = (name: string) => world.connect(hub, name);
  return { world, hub, connect };
}

describe("hub limits", () => {
  it("a message nobody answers within the TTL ends EXPIRED for the sender (a tombstone, not a 404)", async () => {
    const { hub, connect } = await setup({ PI_COMS_NET_MESSAGE_TTL_MS: "500" });
    const sleepy = await rawAgent(hub.url, hub.token, "sleepy");
    const tx = await connect("tx");
    const ack = await tx.send({ to: "sleepy", prompt: "anyone?" });
    const outcome = await tx.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state === "error" && outcome.code, "EXPIRED", JSON.stringify(outcome));
    assert.deepEqual(await tx.get(ack.msg_id), outcome);
    await assert.rejects(
      sleepy.client.messages.settle.mutate({ msg_id: ack.msg_id, result: { ok: true, text: "too late" } }),
      (error: unknown) => toComsError(error).code === "EXPIRED",
    );
  });

  it("an await without a timeout waits the message's lifetime and ends EXPIRED, not pending; get agrees", async () => {
    // Presence far off and a lifetime of 4 s: the hub sweeps once a second, so at the client's deadline
    // (the lifetime, counted from after the send) the sweep has usually not run yet.
    const { hub, connect } = await setup({
      PI_COMS_NET_MESSAGE_TTL_MS: "4000",
      PI_COMS_NET_STALE_AFTER_MS: "3600000",
      PI_COMS_NET_OFFLINE_AFTER_MS: "7200000",
    });
    // Registered and never connected: nobody will ever take the message.
    await rawAgent(hub.url, hub.token, "absent");
    const tx = await connect("tx");
    const ack = await tx.send({ to: "absent", prompt: "anyone?" });
    const outcome = await tx.await(ack.msg_id);
    assert.equal(outcome.state === "error" && outcome.code, "EXPIRED", JSON.stringify(outcome));
    assert.deepEqual(await tx.get(ack.msg_id), outcome);
  });

  it("enforces the hop limit with 'hop limit reached'", async () => {
    const { connect } = await setup({ PI_COMS_NET_MAX_HOPS: "2" });
    const a = await connect("a");
    const b = await connect("b");
    const hops: number[] = [];
    b.onInbound((message) => hops.push(message.hops));
    await a.send({ to: "b", prompt: "direct" });
    await a.send({ to: "b", prompt: "forwarded once", hops: 1 });
    await assert.rejects(a.send({ to: "b", prompt: "one too many", hops: 2 }), (error: ComsError) => {
      assert.equal(error.code, "HOP_LIMIT");
      assert.match(error.message, /hop limit reached/);
      return true;
    });
    await waitFor(() => hops.length === 2, { what: "two deliveries" });
    assert.deepEqual(hops, [1, 2]);
  });

  it("moves a silent agent online → stale → offline, tells the others, and a heartbeat brings it back", async () => {
    const { hub, connect } = await setup({
      PI_COMS_NET_STALE_AFTER_MS: "400",
      PI_COMS_NET_OFFLINE_AFTER_MS: "1000",
      PI_COMS_NET_HEARTBEAT_MS: "100",
    });
    const watcher = await connect("watcher");
    const statuses: string[] = [];
    watcher.onPeers((peers: AgentCard[]) => {
      const quiet = peers.find((peer) => peer.name === "quiet");
      if (quiet && statuses.at(-1) !== quiet.status) statuses.push(quiet.status);
    });
    const quiet = await rawAgent(hub.url, hub.token, "quiet");
    const statusOf = async () => (await watcher.list()).find((card) => card.name === "quiet")?.status;
    await waitFor(async () => (await statusOf()) === "stale", { what: "stale" });
    // The peers event, not only the list, must report the transition before the agent comes back.
    await waitFor(() => statuses.includes("offline"), { what: "an offline peers event" });
    assert.equal(await statusOf(), "offline");
    // A message to an offline agent is accepted and waits for it.
    const ack = await watcher.send({ to: "quiet", prompt: "for later" });
    await quiet.client.agents.heartbeat.mutate({ model: "m2", context_used_pct: 42 });
    const card = (await watcher.list()).find((c) => c.name === "quiet");
    assert.equal(card?.status, "online");
    assert.equal(card?.model, "m2");
    assert.equal(card?.context_used_pct, 42);
    assert.equal(card?.queue_depth, 1);
    await waitFor(() => statuses.join(",").includes("stale,offline,online"), {
      what: `peers events (saw ${statuses.join(",")})`,
    });
    const got: InboxEvent[] = [];
    const sub = quiet.client.messages.inbox.subscribe(
      { lastEventId: null },
      { onData: ({ data }: { data: InboxEvent }) => got.push(data) },
    );
    await waitFor(() => got.some((e) => e.kind === "message" && e.message.msg_id === ack.msg_id), {
      what: "the waiting message",
    });
    sub.unsubscribe();
  });

  it("hands an offline agent's name to the next agent that asks for it", async () => {
    const { hub } = await setup({ PI_COMS_NET_STALE_AFTER_MS: "100", PI_COMS_NET_OFFLINE_AFTER_MS: "200" });
    const crashed = await rawAgent(hub.url, hub.token, "coder");
    const alive = await rawAgent(hub.url, hub.token, "reviewer");
    await waitFor(
      async () => {
        await alive.client.agents.heartbeat.mutate({});
        const cards = await alive.client.agents.list.query({ include_explicit: false });
        return cards.find((card) => card.name === "coder")?.status === "offline";
      },
      { what: "coder offline" },
    );
    const next = await rawAgent(hub.url, hub.token, "coder");
    assert.equal(next.card.name, "coder");
    assert.notEqual(next.card.id, crashed.card.id);
    const busy = await rawAgent(hub.url, hub.token, "reviewer");
    assert.equal(busy.card.name, "reviewer2");
  });

  it("caps the number of agents", async () => {
    const { hub } = await setup({}, ["--max-agents", "2"]);
    await rawAgent(hub.url, hub.token, "one");
    await rawAgent(hub.url, hub.token, "two");
    await assert.rejects(rawAgent(hub.url, hub.token, "three"), (error: unknown) => {
      assert.match(toComsError(error).message, /hub is full/);
      return true;
    });
  });
});

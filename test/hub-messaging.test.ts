import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ComsError } from "../contract/errors.ts";
import type { AgentCard, Message } from "../contract/schemas.ts";
import type { HubClient, HubConnectOptions } from "../hub/client/hub-client.ts";
import { type HubProcess, HubWorld, waitFor } from "./support/hub-harness.ts";

describe("hub messaging (real hub process, typed clients)", () => {
  let world: HubWorld;
  let hub: HubProcess;
  const connect = (opts: HubConnectOptions) => world.connect(hub, opts);
  const echo = (client: HubClient) =>
    client.onInbound((message: Message) => {
      void client.settle(message.msg_id, { ok: true, text: `${client.self.name} got: ${message.prompt}` });
    });

  before(async () => {
    world = new HubWorld();
    hub = await world.startHub({ args: ["--port", "0", "--max-message-bytes", "4096"] });
  });
  after(() => world.dispose());

  it("two agents exchange a message and its reply (send, get, await, peers)", async () => {
    const alice = await connect({ name: "alice", purpose: "asks" });
    const bob = await connect({ name: "bob", purpose: "answers", model: "m1" });
    echo(bob);
    const seen: AgentCard[][] = [];
    alice.onPeers((peers) => seen.push(peers));
    const ack = await alice.send({ to: "bob", prompt: "ping" });
    assert.equal(ack.to, "bob");
    assert.equal(ack.to_id, bob.self.id);
    const outcome = await alice.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state, "reply");
    assert.equal(outcome.state === "reply" && outcome.text, "bob got: ping");
    assert.equal(outcome.state === "reply" && outcome.from, "bob");
    assert.deepEqual(await alice.get(ack.msg_id), outcome);
    const listed = await alice.list();
    const bobCard = listed.find((card) => card.name === "bob");
    assert.equal(bobCard?.status, "online");
    assert.equal(bobCard?.model, "m1");
    await waitFor(() => seen.some((peers) => peers.some((p) => p.name === "bob")), { what: "a peers event" });
    // bob answers alice the other way round too
    echo(alice);
    const back = await bob.send({ to: "alice", prompt: "pong" });
    const reply = await bob.await(back.msg_id, { timeoutMs: 10_000 });
    assert.equal(reply.state === "reply" && reply.text, "alice got: pong");
  });

  it("a card update without the model keeps the model the agent joined with", async () => {
    const watcher = await connect({ name: "watcher" });
    const worker = await connect({ name: "worker", model: "m-kept" });
    worker.updateCard({ queue_depth: 3 });
    worker.updateCard({ context_used_pct: 42 });
    const card = await waitFor(
      async () => (await watcher.list()).find((c) => c.name === "worker" && c.context_used_pct === 42),
      { what: "the worker's context use" },
    );
    assert.equal(card.model, "m-kept");
  });

  it("names get a numeric suffix; explicit agents are hidden unless asked, yet reachable", async () => {
    const first = await connect({ name: "coder" });
    const second = await connect({ name: "coder" });
    assert.equal(first.self.name, "coder");
    assert.equal(second.self.name, "coder2");
    const hidden = await connect({ name: "secret-agent", explicit: true });
    echo(hidden);
    const names = (await first.list()).map((card) => card.name);
    assert.ok(names.includes("coder2"));
    assert.ok(!names.includes("secret-agent"));
    assert.ok((await first.list({ include_explicit: true })).some((card) => card.name === "secret-agent"));
    const ack = await first.send({ to: "secret-agent", prompt: "psst" });
    const outcome = await first.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state, "reply");
  });

  it("rejects unknown peers, oversize prompts, and answers or reads by the wrong agent", async () => {
    const carol = await connect({ name: "carol" });
    const dave = await connect({ name: "dave" });
    const eve = await connect({ name: "eve" });
    await assert.rejects(carol.send({ to: "nobody", prompt: "hi" }), (error: ComsError) => {
      assert.equal(error.code, "UNKNOWN_PEER");
      return true;
    });
    await assert.rejects(carol.send({ to: "dave", prompt: "x".repeat(5000) }), (error: ComsError) => {
      assert.equal(error.code, "TOO_LARGE");
      return true;
    });
    const got: Message[] = [];
    dave.onInbound((message) => got.push(message));
    const ack = await carol.send({ to: "dave", prompt: "only dave answers" });
    await waitFor(() => got.length === 1, { what: "dave's inbound" });
    await assert.rejects(eve.settle(ack.msg_id, { ok: true, text: "forged" }), (error: ComsError) => {
      assert.equal(error.code, "UNAUTHORIZED");
      return true;
    });
    await assert.rejects(eve.get(ack.msg_id), (error: ComsError) => error.code === "UNAUTHORIZED");
    // The receipt goes within the ack window (or with dave's next call), not at once.
    await waitFor(
      async () => {
        const now = await carol.get(ack.msg_id);
        return now.state === "pending" && now.delivered;
      },
      { what: "delivered" },
    );
    assert.deepEqual(await carol.get(ack.msg_id), { state: "pending", msg_id: ack.msg_id, delivered: true });
    await dave.settle(ack.msg_id, { ok: false, code: "BAD_INPUT", message: "cannot do that" });
    const outcome = await carol.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.deepEqual(outcome, {
      state: "error",
      msg_id: ack.msg_id,
      code: "BAD_INPUT",
      message: "cannot do that",
    });
    await assert.rejects(dave.settle(ack.msg_id, { ok: true, text: "twice" }), (error: ComsError) => {
      assert.equal(error.code, "BAD_INPUT");
      return true;
    });
  });

  it("await times out with a TIMEOUT outcome and rejects with CANCELLED on abort", async () => {
    const frank = await connect({ name: "frank" });
    await connect({ name: "silent" });
    const ack = await frank.send({ to: "silent", prompt: "are you there?" });
    const timedOut = await frank.await(ack.msg_id, { timeoutMs: 200 });
    assert.equal(timedOut.state === "error" && timedOut.code, "TIMEOUT");
    const controller = new AbortController();
    const waiting = frank.await(ack.msg_id, { signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, (error: ComsError) => error.code === "CANCELLED");
    assert.equal((await frank.get(ack.msg_id)).state, "pending");
  });

  it("50 agents each message the next one and every reply comes back", async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => connect({ name: `swarm-${i}` })));
    for (const client of clients) echo(client);
    const acks = await Promise.all(
      clients.map((client, i) => client.send({ to: `swarm-${(i + 1) % 50}`, prompt: `hello from ${i}` })),
    );
    const outcomes = await Promise.all(
      acks.map((ack, i) => (clients[i] as HubClient).await(ack.msg_id, { timeoutMs: 20_000 })),
    );
    outcomes.forEach((outcome, i) => {
      assert.equal(outcome.state, "reply", JSON.stringify(outcome));
      assert.equal(outcome.state === "reply" && outcome.text, `swarm-${(i + 1) % 50} got: hello from ${i}`);
    });
    const listed = await (clients[0] as HubClient).list();
    assert.equal(listed.filter((card) => card.name.startsWith("swarm-")).length, 49);
  });

  it("close() deregisters: the agent leaves the list and new sends to it fail", async () => {
    const stay = await connect({ name: "stayer" });
    const leave = await connect({ name: "leaver" });
    await leave.close();
    assert.ok(!(await stay.list()).some((card) => card.name === "leaver"));
    await assert.rejects(stay.send({ to: "leaver", prompt: "hi" }), (error: ComsError) => {
      assert.equal(error.code, "UNKNOWN_PEER");
      return true;
    });
  });
});

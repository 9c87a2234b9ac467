/**
 * Acks that ride along: an answered prompt needs no ack of its own (the reply
 * settles it) and the sender's ack of the reply travels with its next send,
 * so a run of answered prompts costs about two requests each at the hub
 * (send, settle) instead of four; nothing is lost and an old-style client
 * (separate acks) still works against the same hub.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { connectHub } from "../hub/client/hub-client.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { CuttableProxy } from "./support/hub-proxy.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

describe("acks that ride along", () => {
  const world = new HubWorld();
  after(() => world.dispose());

  it("a run of N answered prompts costs about 2N requests at the hub, every reply taken", async () => {
    const hub = await world.startHub({ project: "ride", args: ["--max-sends-per-sec", "0"] });
    const proxy = await CuttableProxy.start(hub.port);
    world.defer(() => proxy.close());
    const join = (name: string) =>
      connectHub({ url: proxy.url, token: hub.token, project: "ride", name, env: world.env });
    const receiver = await join("rx");
    world.defer(() => receiver.close());
    const sender = await join("tx");
    world.defer(() => sender.close());
    // The receiver takes a moment to answer, as an agent does (well within the ack window).
    receiver.onInbound((message) => {
      setTimeout(() => void receiver.settle(message.msg_id, { ok: true, text: `re ${message.prompt}` }), 40);
    });
    const count = 30;
    const start = proxy.requests.length;
    for (let i = 0; i < count; i++) {
      const { msg_id } = await sender.send({ to: "rx", prompt: `p${i}` });
      const outcome = await sender.await(msg_id, { timeoutMs: 30_000 });
      assert.equal(outcome.state === "reply" && outcome.text, `re p${i}`);
    }
    const run = proxy.requests.slice(start);
    const calls = run.filter((line) => line.startsWith("POST"));
    const acks = calls.filter((line) => line.includes("messages.ack")).length;
    const sends = calls.filter((line) => line.includes("messages.send")).length;
    const settles = calls.filter((line) => line.includes("messages.settle")).length;
    assert.equal(sends, count);
    assert.equal(settles, count);
    // Four per prompt before (send, the receiver's ack, settle, the sender's ack of the reply);
    // a lone ack now goes only when nothing else went within its window (a slow turn on a busy machine).
    assert.ok(acks <= count / 3, `${acks} separate ack requests for ${count} answered prompts`);
    assert.ok(
      calls.length <= 2 * count + count / 3,
      `${calls.length} requests for ${count} answered prompts`,
    );
    // The last reply's ack has nothing to ride on: it goes alone, and every reply ends up taken
    // (a reply counts toward the hub's held bytes until its sender acks it).
    await waitFor(async () => (await heldBytes(hub.url, hub.token)) === 0, { what: "every reply taken" });
  });

  it("a pending ack rides with a card update, and an old-style separate ack still works", async () => {
    const hub = await world.startHub({ project: "ride2" });
    const proxy = await CuttableProxy.start(hub.port);
    world.defer(() => proxy.close());
    const receiver = await connectHub({
      url: proxy.url,
      token: hub.token,
      project: "ride2",
      name: "rx",
      env: world.env,
    });
    world.defer(() => receiver.close());
    const old = await rawAgent(hub.url, hub.token, "old");
    const got: string[] = [];
    receiver.onInbound((message) => {
      got.push(message.msg_id);
      // Something else to send while the ack is pending: it carries the ack.
      receiver.updateCard({ context_used_pct: got.length });
    });
    const { msg_id } = await old.client.messages.send.mutate({ to: "rx", prompt: "hello" });
    await waitFor(
      async () => {
        const outcome = await old.client.messages.get.query({ msg_id });
        return outcome.state === "pending" && outcome.delivered;
      },
      { what: "delivered" },
    );
    assert.equal(proxy.requests.filter((line) => line.includes("messages.ack")).length, 0, "no separate ack");
    // An old client acks on its own: the hub still takes it.
    const back = await old.client.messages.send.mutate({ to: "rx", prompt: "again" });
    await waitFor(() => got.length === 2, { what: "second message" });
    await receiver.settle(back.msg_id, { ok: true, text: "done" });
    await waitFor(
      async () => (await old.client.messages.get.query({ msg_id: back.msg_id })).state === "reply",
      {
        what: "reply",
      },
    );
  });
});

/** The hub-wide gauge of held bytes (unanswered prompts, replies not yet taken), from /metrics. */
async function heldBytes(url: string, token: string): Promise<number> {
  const text = await (
    await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  const value = /^pi_coms_hub_queued_bytes (\d+)$/m.exec(text)?.[1];
  assert.ok(value !== undefined, "pi_coms_hub_queued_bytes is in /metrics");
  return Number(value);
}

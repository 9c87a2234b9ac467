import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import type { InboxEvent } from "../contract/schemas.ts";
import { connectHub, type HubClient } from "../hub/client/hub-client.ts";
import { writeJsonAtomic } from "../lib/private-fs.ts";
import { echo, HubWorld, kill9, raw, waitFor } from "./support/hub-harness.ts";
import { CuttableProxy } from "./support/hub-proxy.ts";
import { rawAgent, rawClient } from "./support/hub-raw-client.ts";

const worlds: HubWorld[] = [];
function newWorld(env: Record<string, string> = {}) {
  const world = new HubWorld(env);
  worlds.push(world);
  return world;
}
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.dispose();
});
after(async () => {
  for (const world of worlds.splice(0)) await world.dispose();
});

/** Retry `send` until the hub is back and takes it: the client reconnects on its own. */
function sendOnceBack(client: HubClient, message: { to: string; prompt: string }, what: string) {
  return waitFor(
    async () => {
      try {
        return await client.send(message);
      } catch {
        return undefined;
      }
    },
    { what, timeoutMs: 15_000 },
  );
}

describe("hub resilience", () => {
  it("an SSE stream cut mid-way resumes from Last-Event-ID with no loss and no duplicates", async () => {
    const world = newWorld();
    const hub = await world.startHub();
    const proxy = await CuttableProxy.start(hub.port);
    world.defer(() => proxy.close());
    // The receiver reads its inbox through the proxy and never acks: only the stream's resume keeps it exact.
    const rx = await rawAgent(hub.url, hub.token, "rx");
    const viaProxy = rawClient(proxy.url, hub.token, { id: rx.card.id, agentToken: rx.agentToken });
    const received: string[] = [];
    const eventIds: string[] = [];
    const sub = viaProxy.messages.inbox.subscribe(
      { lastEventId: null },
      {
        onData: (item: { id: string; data: InboxEvent }) => {
          if (item.data.kind !== "message") return;
          eventIds.push(item.id);
          received.push(item.data.message.msg_id);
        },
      },
    );
    world.defer(() => sub.unsubscribe());
    const tx = await rawAgent(hub.url, hub.token, "tx");
    const sent: string[] = [];
    const total = 120;
    for (let i = 0; i < total; i++) {
      sent.push((await tx.client.messages.send.mutate({ to: "rx", prompt: `n${i}` })).msg_id);
      // Cut while events are in flight, several times.
      if (i % 30 === 15) {
        await waitFor(() => received.length > i - 10, { what: "some events before the cut" });
        proxy.cut();
      }
    }
    await waitFor(() => received.length >= total, { what: `all ${total} messages`, timeoutMs: 15_000 });
    assert.ok(proxy.cuts >= 4);
    assert.equal(new Set(received).size, received.length, "no duplicates");
    assert.deepEqual(received, sent, "every message, in order");
    assert.equal(new Set(eventIds).size, eventIds.length);
  });

  it("kill -9 and restart with the SQLite store loses no accepted message and no unread reply", async () => {
    const world = newWorld();
    let hub = await world.startHub({ args: ["--port", "0"] });
    const port = hub.port;
    const connect = (name: string) => world.connect(hub, name);
    const rx = await connect("rx");
    echo(rx);
    const tx = await connect("tx");
    // ghost registers but opens no stream: messages to it queue, replies to it wait on the hub.
    const ghost = await rawAgent(hub.url, hub.token, "ghost");
    const asked: string[] = [];
    for (let i = 0; i < 20; i++) {
      asked.push((await ghost.client.messages.send.mutate({ to: "rx", prompt: `q${i}` })).msg_id);
    }
    await waitFor(
      async () => {
        const states = await Promise.all(asked.map((id) => ghost.client.messages.get.query({ msg_id: id })));
        return states.every((state) => state.state === "reply");
      },
      { what: "rx to answer all 20" },
    );
    const queued: string[] = [];
    for (let i = 0; i < 20; i++) queued.push((await tx.send({ to: "ghost", prompt: `m${i}` })).msg_id);
    const txId = tx.self.id;

    await kill9(hub);
    hub = await world.startHub({ args: ["--port", String(port)] });
    assert.equal(hub.port, port);

    const ghostStream = rawClient(hub.url, hub.token, { id: ghost.card.id, agentToken: ghost.agentToken });
    const messages: string[] = [];
    const replies = new Map<string, string>();
    const sub = ghostStream.messages.inbox.subscribe(
      { lastEventId: null },
      {
        onData: ({ data }: { data: InboxEvent }) => {
          if (data.kind === "message") messages.push(data.message.msg_id);
          if (data.kind === "outcome" && data.outcome.state === "reply") {
            replies.set(data.outcome.msg_id, data.outcome.text);
          }
        },
      },
    );
    world.defer(() => sub.unsubscribe());
    await waitFor(() => messages.length === 20 && replies.size === 20, { what: "the queue and the replies" });
    assert.deepEqual(messages, queued);
    asked.forEach((id, i) => {
      assert.equal(replies.get(id), `re: q${i}`);
    });
    // The typed clients came back by themselves, with the same identity.
    const after = await sendOnceBack(tx, { to: "rx", prompt: "after the crash" }, "tx to send again");
    const outcome = await tx.await(after.msg_id, { timeoutMs: 15_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "re: after the crash");
    assert.equal(tx.self.id, txId);
  });

  it("after a restart of a memory-store hub, clients re-register with the same identity by themselves", async () => {
    const world = newWorld();
    let hub = await world.startHub({ args: ["--store", "memory"] });
    const port = hub.port;
    const connect = (name: string) => world.connect(hub, name);
    const a = await connect("a");
    const b = await connect("b");
    echo(b);
    const ids = [a.self.id, b.self.id];
    await kill9(hub);
    hub = await world.startHub({ args: ["--store", "memory", "--port", String(port)] });
    const ack = await sendOnceBack(a, { to: "b", prompt: "still there?" }, "both clients to re-register");
    assert.equal(ack.to_id, ids[1]);
    const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "re: still there?");
    assert.deepEqual([a.self.id, b.self.id], ids);
    assert.deepEqual(
      (await a.list()).map((card) => card.name),
      ["b"],
    );
  });

  it("a rotated token is picked up from the secret file after a 401", async () => {
    const world = newWorld();
    let hub = await world.startHub({ project: "rot" });
    const port = hub.port;
    // Discovered, not given: the client may re-read the secret file.
    const a = await connectHub({ project: "rot", env: world.env, name: "a" });
    world.defer(() => a.close());
    const b = await connectHub({ project: "rot", env: world.env, name: "b" });
    world.defer(() => b.close());
    echo(b);
    const oldToken = hub.token;
    hub.child.kill("SIGTERM");
    await hub.exited;
    const newToken = "rotated-token-0123456789abcdef0123456789";
    writeJsonAtomic(`${world.env.PI_COMS_NET_DIR}/projects/rot/server.secret.json`, { token: newToken });
    hub = await world.startHub({ project: "rot", args: ["--port", String(port)] });
    assert.equal(hub.token, newToken);
    const ack = await sendOnceBack(
      a,
      { to: "b", prompt: "new token?" },
      "the client to pick up the new token",
    );
    const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state, "reply");
    assert.equal((await raw(hub.url, "/trpc/agents.list", { token: oldToken })).status, 401);
  });
});

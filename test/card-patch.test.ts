/**
 * A card update says only what it carries: the model and context given at
 * connect survive heartbeats and later updates of other fields, on a real
 * hub process and between real P2P nodes; a resume without a model keeps it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { CardPatch, RegisterInput } from "../contract/schemas.ts";
import { startP2P } from "../peer/node.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { rawAgent, rawClient } from "./support/hub-raw-client.ts";
import { Sandbox, until } from "./support/p2p-harness.ts";

const worlds: HubWorld[] = [];
const boxes: Sandbox[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
  await Promise.all(boxes.map((box) => box.cleanup()));
});

describe("card patches never invent fields", () => {
  it("the patch schema parses {} to {} and keeps only what is given", () => {
    assert.deepEqual(CardPatch.parse({}), {});
    assert.deepEqual(CardPatch.parse({ queue_depth: 2 }), { queue_depth: 2 });
    assert.deepEqual(CardPatch.parse({ context_used_pct: null }), { context_used_pct: null });
    assert.deepEqual(RegisterInput.parse({ name: "a" }), { name: "a" });
  });

  it("hub: heartbeats and an update of another field keep the model given at connect", async () => {
    const world = new HubWorld();
    worlds.push(world);
    const hub = await world.startHub();
    const watcher = await world.connect(hub, "watcher");
    // A bare heartbeat, as every client sends one each period.
    const raw = await rawClient(hub.url, hub.token).agents.register.mutate({ name: "bare", model: "m-bare" });
    const bare = rawClient(hub.url, hub.token, { id: raw.card.id, agentToken: raw.agent_token });
    assert.equal((await bare.agents.heartbeat.mutate({})).model, "m-bare");
    // The typed client: its own heartbeats, then an update of the context only.
    const agent = await world.connect(hub, { name: "scripted", model: "m-script" });
    agent.updateCard({ context_used_pct: 42 });
    const seen = await waitFor(
      async () => (await watcher.list()).find((c) => c.name === "scripted" && c.context_used_pct === 42),
      { what: "the watcher to see the new context" },
    );
    assert.equal(seen.model, "m-script");
    assert.equal((await watcher.list()).find((c) => c.name === "bare")?.model, "m-bare");
    // A resume that does not name the model keeps it.
    const resumed = await rawClient(hub.url, hub.token).agents.register.mutate({
      name: "bare",
      resume: { id: raw.card.id, agent_token: raw.agent_token },
    });
    assert.equal(resumed.card.model, "m-bare");
    const other = await rawAgent(hub.url, hub.token, "other");
    assert.equal((await other.client.agents.heartbeat.mutate({ queue_depth: 1 })).model, "");
  });

  it("P2P: an update of another field keeps the model given at connect", async () => {
    const box = new Sandbox();
    boxes.push(box);
    const a = await startP2P({ name: "a", project: "cards", env: box.env, model: "m-a" });
    const b = await startP2P({ name: "b", project: "cards", env: box.env });
    try {
      a.updateCard({ context_used_pct: 42 });
      const seen = await until(async () =>
        (await b.list()).find((c) => c.name === "a" && c.context_used_pct === 42),
      );
      assert.equal(seen?.model, "m-a");
      assert.equal(a.self.model, "m-a");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

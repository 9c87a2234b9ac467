/**
 * The hub writes only what must survive a restart: a presence update that
 * changes context use or queue depth is kept in memory (the client sends it
 * again with its next change), a model change is written.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HubBackend } from "../hub/backend/backend.ts";
import { MemoryStore } from "../hub/store/memory.ts";

class CountingStore extends MemoryStore {
  agentWrites = 0;
  override putAgent(): void {
    this.agentWrites++;
  }
}

describe("hub store writes", () => {
  it("a heartbeat writes the agent only when its model changed", async () => {
    const store = new CountingStore();
    const backend = new HubBackend(store, "writes", {
      maxHops: 5,
      messageTtlMs: 60_000,
      staleAfterMs: 30_000,
      offlineAfterMs: 60_000,
      maxMessageBytes: 64 * 1024,
      maxAgents: 10,
    });
    try {
      const { card } = await backend.register({ name: "a", model: "m1" });
      const caller = { id: card.id, name: card.name };
      const before = store.agentWrites;
      for (let pct = 1; pct <= 5; pct++)
        await backend.heartbeat(caller, { context_used_pct: pct, queue_depth: pct });
      assert.equal(store.agentWrites, before, "context and queue changes are not written");
      assert.equal((await backend.card(caller)).context_used_pct, 5, "but the card shows them");
      await backend.heartbeat(caller, { model: "m2" });
      assert.equal(store.agentWrites, before + 1, "a model change is written");
    } finally {
      await backend.close();
    }
  });
});

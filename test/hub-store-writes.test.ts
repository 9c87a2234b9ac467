/**
 * The hub writes only what must survive a restart: a presence update that
 * changes context use or queue depth is kept in memory (the client sends it
 * again with its next change), a model change is written.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { HubBackend } from "../hub/backend/backend.ts";
import { MemoryStore } from "../hub/store/memory.ts";
import { openSqliteStore } from "../hub/store/sqlite.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";

class CountingStore extends MemoryStore {
  agentWrites = 0;
  messageWrites = 0;
  override putAgent(): void {
    this.agentWrites++;
  }
  override putMessage(): void {
    this.messageWrites++;
  }
}

describe("hub store writes", () => {
  it("a heartbeat writes the agent only when its model changed", async () => {
    const store = new CountingStore();
    const backend = new HubBackend(store, "writes", TEST_LIMITS);
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

describe("hub store writes per answered prompt", () => {
  it("writes the message when sent and when answered, not when its sender takes the reply", async () => {
    const store = new CountingStore();
    const backend = new HubBackend(store, "writes", TEST_LIMITS);
    try {
      const asker = (await backend.register({ name: "asker" })).card;
      const answerer = (await backend.register({ name: "answerer" })).card;
      const from = { id: asker.id, name: asker.name };
      const to = { id: answerer.id, name: answerer.name };
      const before = store.messageWrites;
      const { msg_id } = await backend.send(from, { to: "answerer", prompt: "q", hops: 0 });
      assert.equal(store.messageWrites, before + 1, "the send is written");
      await backend.settle(to, { msg_id, result: { ok: true, text: "a" } });
      assert.equal(store.messageWrites, before + 2, "the answer is written");
      await backend.ack(from, [msg_id]);
      assert.equal(store.messageWrites, before + 2, "taking the reply is not");
      const outcome = await backend.get(from, msg_id);
      assert.equal(outcome.state === "reply" && outcome.text, "a");
    } finally {
      await backend.close();
    }
  });
});

describe("hub store sequence numbers", () => {
  it("only grow across restarts, though the SQLite store reserves them in blocks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pcs-seq-"));
    try {
      let highest = 0;
      // Five lifetimes, each handing out numbers past a block boundary, one commit per number.
      for (let life = 0; life < 5; life++) {
        const store = await openSqliteStore(dir);
        assert.ok(
          store.lastSeq >= highest,
          `restart ${life}: resumes at ${store.lastSeq}, had given ${highest}`,
        );
        let seq = store.lastSeq;
        for (let i = 0; i < 5000; i += 250) {
          seq += 250;
          store.setLastSeq(seq);
          await store.flush();
        }
        highest = seq;
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * No inbox event leaves the hub before the store has it: events wait for the
 * store's commit, go out in order once it is done, and a failed commit ends
 * the stream instead (the client resumes from its last id).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { InboxItem } from "../contract/router.ts";
import { HubBackend } from "../hub/backend/backend.ts";
import { MemoryStore } from "../hub/store/memory.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";

/**
 * A store that, once it holds, commits when the test says so: a flush waits
 * for the commit of what was written before it, as the real stores' do.
 */
class GatedStore extends MemoryStore {
  holding = false;
  private dirty = false;
  private gates: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  override putMessage(): void {
    this.dirty = true;
  }
  override setLastSeq(seq: number): void {
    super.setLastSeq(seq);
    this.dirty = true;
  }
  override flush(): Promise<void> {
    if (!this.holding || !this.dirty) return Promise.resolve();
    return new Promise((resolve, reject) => this.gates.push({ resolve, reject }));
  }
  commit(): void {
    this.dirty = false;
    for (const gate of this.gates.splice(0)) gate.resolve();
  }
  fail(): void {
    for (const gate of this.gates.splice(0)) gate.reject(new Error("disk full"));
  }
}

async function world() {
  const store = new GatedStore();
  const backend = new HubBackend(store, "durable", TEST_LIMITS);
  const register = async (name: string) => {
    const { card } = await backend.register({ name });
    return { id: card.id, name: card.name };
  };
  const asker = await register("asker");
  const answerer = await register("answerer");
  const seen: string[] = [];
  let ended = false;
  const feed = backend.inbox(answerer, null, undefined, { peers: false });
  feed.attach({
    next: (item: InboxItem) => {
      if (item.event.kind === "message") seen.push(item.event.message.prompt);
      return true;
    },
    end: () => {
      ended = true;
    },
  });
  store.holding = true;
  const send = (prompt: string) => {
    // The send itself waits for the commit: not awaited here.
    void backend.send(asker, { to: "answerer", prompt, hops: 0 }).catch(() => {});
  };
  return { store, backend, seen, send, isEnded: () => ended };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("hub inbox and the store", () => {
  it("hands an event on only after the store committed it, in order", async () => {
    const { store, backend, seen, send } = await world();
    try {
      send("one");
      send("two");
      await tick();
      assert.deepEqual(seen, [], "nothing before the commit");
      store.commit();
      await tick();
      assert.deepEqual(seen, ["one", "two"]);
      send("three");
      await tick();
      assert.deepEqual(seen, ["one", "two"], "a later event waits for its own commit");
      store.commit();
      await tick();
      assert.deepEqual(seen, ["one", "two", "three"]);
    } finally {
      store.holding = false;
      store.commit();
      await backend.close();
    }
  });

  it("ends the stream, handing nothing, when the commit fails", async () => {
    const { store, backend, seen, send, isEnded } = await world();
    try {
      send("lost?");
      await tick();
      store.fail();
      await tick();
      assert.deepEqual(seen, [], "an event the store does not have never leaves");
      assert.equal(isEnded(), true, "the stream ended (its client resumes from its last id)");
    } finally {
      store.holding = false;
      store.commit();
      await backend.close();
    }
  });
});

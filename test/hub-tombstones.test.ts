/**
 * Tombstones: a message whose reply its sender has taken is kept packed
 * (hub/backend/message-table.ts) until its retention ends, and must still
 * answer everything a live record did: the sender's get, a repeated send
 * with the same msg_id, a late settle or ack, the dashboard's snapshot, and
 * the purge (in memory and in the SQLite file). Real backend and store, in
 * this process.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ulid } from "../contract/ids.ts";
import type { Caller } from "../contract/router.ts";
import { HubBackend } from "../hub/backend/backend.ts";
import { TAKEN_RETENTION_MS } from "../hub/backend/limits.ts";
import { MessageTable } from "../hub/backend/message-table.ts";
import { openStore } from "../hub/store/store.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";
import { messageRecord as record } from "./support/message-record.ts";

const LIMITS = { ...TEST_LIMITS, messageTtlMs: 4 * TAKEN_RETENTION_MS };

describe("MessageTable", () => {
  it("reads a packed record back whole, as a copy, and tells it apart from live ones", () => {
    const table = new MessageTable();
    const live = record("L", 2, "queued");
    const tomb = record("T", 1);
    table.set("L", live);
    table.set("T", tomb);
    table.pack("T");
    assert.equal(table.size, 2);
    assert.equal(table.isPacked("T"), true);
    assert.equal(table.isPacked("L"), false);
    assert.equal(table.unpacked("T"), undefined, "unpacked() does not read a tombstone back");
    assert.equal(table.unpacked("L"), live);
    assert.equal(table.stateOf("T"), "final", "a tombstone's state, without reading it back");
    assert.equal(table.stateOf("L"), "queued");
    assert.equal(table.stateOf("none"), undefined);
    assert.equal(table.get("L"), live, "a live record is the object itself");
    const back = table.get("T");
    assert.deepEqual(back, tomb);
    assert.notEqual(back, tomb, "a tombstone is read back as a copy");
    assert.deepEqual(
      table.values().map((r) => r.message.msg_id),
      ["T", "L"],
      "in the order the messages were sent",
    );
    assert.deepEqual([...table.keys()].sort(), ["L", "T"]);
    assert.equal(table.delete("T"), true);
    assert.equal(table.has("T"), false);
    assert.equal(table.get("T"), undefined);
    assert.equal(table.size, 1);
  });

  it("keeps a record that cannot be written as JSON as it is", () => {
    const table = new MessageTable();
    const odd = record("Y", 1);
    Object.defineProperty(odd.message, "response_schema", {
      enumerable: true,
      get() {
        throw new Error("cannot be read");
      },
    });
    table.set("Y", odd);
    table.pack("Y");
    assert.equal(table.isPacked("Y"), false);
    assert.equal(table.get("Y"), odd);
  });

  it("a record set again under a packed id is live again", () => {
    const table = new MessageTable();
    table.set("X", record("X", 1));
    table.pack("X");
    const again = record("X", 5, "queued");
    table.set("X", again);
    assert.equal(table.isPacked("X"), false);
    assert.equal(table.get("X"), again);
    assert.equal(table.size, 1);
  });
});

describe("a tombstone whose reply was taken (real backend, SQLite store)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-tombstones-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("answers get, a repeated send, a late settle and ack, the snapshot, then goes at its retention", async () => {
    const store = await openStore("sqlite", dir);
    const backend = new HubBackend(store, "p", LIMITS);
    const a = await backend.register({ name: "a" });
    const b = await backend.register({ name: "b" });
    const alice: Caller = { id: a.card.id, name: "a" };
    const bob: Caller = { id: b.card.id, name: "b" };
    const msgId = ulid();
    const start = Date.now();
    const sent = await backend.send(alice, { to: "b", prompt: "question", hops: 0, msg_id: msgId });
    await backend.settle(bob, { msg_id: msgId, result: { ok: true, text: "answer" } });
    await backend.ack(alice, [msgId]);

    const outcome = await backend.get(alice, msgId);
    assert.equal(outcome.state, "reply");
    assert.equal(outcome.state === "reply" && outcome.text, "answer");
    const again = await backend.send(alice, { to: "b", prompt: "question", hops: 0, msg_id: msgId });
    assert.deepEqual(
      { ...again, queue_depth: 0 },
      { ...sent, queue_depth: 0 },
      "the same ack (its queue depth is today's), not a second message",
    );
    await assert.rejects(
      async () => backend.settle(bob, { msg_id: msgId, result: { ok: true, text: "twice" } }),
      /already been answered/,
    );
    await backend.ack(alice, [msgId]);
    await assert.rejects(async () => backend.get(bob, msgId), /only the sender/);
    const held = backend.snapshot().messages.find((m) => m.message.msg_id === msgId);
    assert.equal(held?.state, "final");
    assert.equal(held?.outcome?.state === "reply" && held.outcome.text, "answer");
    const end = Date.now();

    backend.sweep(start + TAKEN_RETENTION_MS - 1);
    assert.equal((await backend.get(alice, msgId)).state, "reply", "kept until its retention");
    backend.sweep(end + TAKEN_RETENTION_MS);
    const gone = await backend.get(alice, msgId);
    assert.equal(gone.state === "error" && gone.code, "EXPIRED");
    await backend.close();

    const reopened = await openStore("sqlite", dir);
    assert.deepEqual(
      reopened.loadMessages().map((r) => r.message.msg_id),
      [],
      "the purge reached the file",
    );
    reopened.close();
  });
});

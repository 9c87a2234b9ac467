/**
 * The SQLite store writes a message record as a compact row (a JSON array,
 * hub/store/message-row.ts). Every record the backend writes must read back
 * exactly as it was, a row an earlier hub wrote as an object must still load,
 * and a message queued in such a row must still be delivered after the
 * restart. Real backend, real SQLite file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Message, Outcome } from "../contract/schemas.ts";
import { HubBackend } from "../hub/backend/backend.ts";
import { MemoryStore } from "../hub/store/memory.ts";
import { decodeMessageRow, encodeMessageRow, MESSAGE_FIELDS } from "../hub/store/message-row.ts";
import { openSqliteStore, STORE_FILE } from "../hub/store/sqlite.ts";
import { openSqlite } from "../hub/store/sqlite-driver.ts";
import type { MessageRecord } from "../hub/store/store.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";
import { messageRecord } from "./support/message-record.ts";

/** Remembers, at each write, the record as it was and the row the SQLite store would write for it. */
class RowCapturingStore extends MemoryStore {
  readonly writes: Array<{ record: MessageRecord; row: string }> = [];
  override putMessage(record: MessageRecord): void {
    this.writes.push({ record: structuredClone(record), row: encodeMessageRow(record) });
  }
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("compact message rows", () => {
  it("list every field a message has (a field added to the schema needs a place in the row)", () => {
    assert.deepEqual(
      [...MESSAGE_FIELDS].sort(),
      Object.keys(Message.shape)
        .filter((key) => key !== "msg_id")
        .sort(),
    );
    // The outcome cells know the reply's and the error's fields by name.
    const variants = Object.fromEntries(
      Outcome.options.map((option) => [option.shape.state.value, Object.keys(option.shape).sort()]),
    );
    assert.deepEqual(variants.reply, ["from", "msg_id", "replied_at", "state", "text", "value"]);
    assert.deepEqual(variants.error, ["code", "message", "msg_id", "state"]);
  });

  it("read back every record the backend writes exactly, key order included, at about half the size", async () => {
    const store = new RowCapturingStore();
    const backend = new HubBackend(store, "rows", TEST_LIMITS);
    try {
      const asker = (await backend.register({ name: "asker" })).card;
      const answerer = (await backend.register({ name: "answerer" })).card;
      const from = { id: asker.id, name: asker.name };
      const to = { id: answerer.id, name: answerer.name };
      const plain = await backend.send(from, { to: "answerer", prompt: "q1", hops: 0 });
      const rich = await backend.send(from, {
        to: "answerer",
        prompt: "q2",
        hops: 0,
        conversation_id: "c-1",
        chain_id: "chain-1",
        response_schema: { type: "object", properties: { n: { type: "number" } } },
      });
      const nullValue = await backend.send(from, { to: "answerer", prompt: "q3", hops: 0 });
      const failed = await backend.send(from, { to: "answerer", prompt: "q4", hops: 0 });
      await backend.ack(to, [plain.msg_id]);
      await backend.settle(to, { msg_id: plain.msg_id, result: { ok: true, text: "a1" } });
      await backend.settle(to, {
        msg_id: rich.msg_id,
        result: { ok: true, text: '{"n":1}', value: { n: 1 } },
      });
      await backend.settle(to, { msg_id: nullValue.msg_id, result: { ok: true, text: "null", value: null } });
      await backend.settle(to, {
        msg_id: failed.msg_id,
        result: { ok: false, code: "CANCELLED", message: "not now" },
      });
      const states = new Set(store.writes.map((write) => write.record.state));
      assert.deepEqual([...states].sort(), ["acked", "final", "queued"]);
      for (const { record, row } of store.writes) {
        const back = decodeMessageRow(record.message.msg_id, row);
        assert.deepStrictEqual(back, record);
        assert.deepEqual(Object.keys(back.message), Object.keys(record.message), "message key order");
        if (record.outcome) assert.deepEqual(Object.keys(back.outcome ?? {}), Object.keys(record.outcome));
        assert.ok(
          row.length < 0.65 * JSON.stringify(record).length,
          `row ${row.length} B vs ${JSON.stringify(record).length} B as an object`,
        );
      }
      const nullReply = store.writes.find(
        (w) => w.record.message.msg_id === nullValue.msg_id && w.record.outcome,
      );
      assert.ok(nullReply);
      const back = decodeMessageRow(nullValue.msg_id, nullReply.row).outcome;
      assert.ok(back?.state === "reply" && "value" in back && back.value === null, "a null value stays null");
    } finally {
      await backend.close();
    }
  });

  it("keep an outcome naming another message as an object, and refuse a layout they do not know", () => {
    const record: MessageRecord = {
      ...messageRecord("M1", 3),
      outcome: { state: "error", msg_id: "M2", code: "EXPIRED", message: "gone" },
      bytes: 7,
    };
    assert.deepStrictEqual(decodeMessageRow("M1", encodeMessageRow(record)), record);
    assert.throws(() => decodeMessageRow("M1", "[2]"), /row layout 2 is not one this hub reads/);
  });

  it("load rows an earlier hub wrote as objects, and deliver a message queued in one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pcs-rows-"));
    dirs.push(dir);
    // A hub of this version registers both agents, then stops.
    let backend = new HubBackend(await openSqliteStore(dir), "rows", TEST_LIMITS);
    const asker = (await backend.register({ name: "asker" })).card;
    const answerer = (await backend.register({ name: "answerer" })).card;
    await backend.close();
    // The file gets a queued message as an earlier hub wrote it: the record as one JSON object.
    const old: MessageRecord = {
      message: {
        msg_id: "01JOLDROW00000000000000000",
        from: "asker",
        from_id: asker.id,
        to: "answerer",
        to_id: answerer.id,
        prompt: "written before",
        hops: 1,
        created_at: Date.now(),
      },
      state: "queued",
      expires_at: Date.now() + 60_000,
      deliver_seq: 5,
    };
    const db = await openSqlite(join(dir, STORE_FILE));
    db.prepare("INSERT INTO messages (id, data) VALUES (?, ?)").run(old.message.msg_id, JSON.stringify(old));
    db.close();
    backend = new HubBackend(await openSqliteStore(dir), "rows", TEST_LIMITS);
    try {
      const to = { id: answerer.id, name: answerer.name };
      const from = { id: asker.id, name: asker.name };
      assert.deepEqual(await backend.get(from, old.message.msg_id), {
        state: "pending",
        msg_id: old.message.msg_id,
        delivered: false,
      });
      const ac = new AbortController();
      let delivered: unknown;
      for await (const item of backend.inbox(to, null, ac.signal, { peers: false })) {
        if (item.event.kind !== "message") continue;
        delivered = [item.event.message.msg_id, item.event.message.prompt];
        break;
      }
      ac.abort();
      assert.deepEqual(delivered, [old.message.msg_id, "written before"]);
      await backend.settle(to, { msg_id: old.message.msg_id, result: { ok: true, text: "read it" } });
      const outcome = await backend.get(from, old.message.msg_id);
      assert.equal(outcome.state === "reply" && outcome.text, "read it");
    } finally {
      await backend.close();
    }
    // And the answer, written in the new layout, reads back after one more restart.
    const store = await openSqliteStore(dir);
    const [again] = store.loadMessages();
    store.close();
    assert.equal(again?.state, "final");
    assert.equal(again?.outcome?.state === "reply" && again.outcome.text, "read it");
  });
});

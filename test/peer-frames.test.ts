/**
 * The frame checks every P2P frame goes through (contract/frames.ts) agree
 * with the zod schemas they stand in for: same verdict, the same fields read,
 * and zod's error for a frame that is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClientFrame, parseClientFrame, parseServerFrame, ServerFrame } from "../contract/frames.ts";
import { OutcomeBatch, parseOutcomeBatch } from "../peer/outcome-batch.ts";

const clientFrames: unknown[] = [
  { k: "req", id: 1, type: "mutation", path: "messages.send", input: { json: { to: "b", prompt: "hi" } } },
  { k: "req", id: 0, type: "query", path: "agents.card" },
  {
    k: "req",
    id: 2,
    type: "subscription",
    path: "messages.outcomes",
    input: { json: { after: 0 } },
    extra: 1,
  },
  { k: "stop", id: 7 },
  { k: "stop", id: 7, type: "bogus" },
  { k: "req", id: -1, type: "query", path: "agents.card" },
  { k: "req", id: 1.5, type: "query", path: "agents.card" },
  { k: "req", id: Number.MAX_SAFE_INTEGER + 2, type: "query", path: "agents.card" },
  { k: "req", id: "1", type: "query", path: "agents.card" },
  { k: "req", id: 1, type: "delete", path: "agents.card" },
  { k: "req", id: 1, type: "query", path: "" },
  { k: "req", id: 1, type: "query", path: "x".repeat(201) },
  { k: "req", id: 1, type: "query", path: "x".repeat(200) },
  { k: "req", id: 1, type: "query" },
  { k: "stop" },
  { k: "nope", id: 1 },
  { id: 1 },
  null,
  [],
  "req",
  42,
];

const serverFrames: unknown[] = [
  { k: "data", id: 1, data: { json: 1 } },
  { k: "data", id: 1 },
  { k: "data", id: 1, data: undefined },
  { k: "error", id: 1 },
  { k: "error", id: 1, error: undefined },
  { k: "started", id: 3 },
  { k: "stopped", id: 3, data: "ignored" },
  { k: "error", id: null, error: { json: {} } },
  { k: "error", id: 4, error: { json: {} } },
  { k: "error", id: -4, error: {} },
  { k: "data", id: null, data: 1 },
  { k: "started", id: "3" },
  { k: "stopped" },
  { k: "other", id: 1 },
  null,
  [1],
];

const ID = "01JX2Q9V4C8M6N3P5R7T9W1Y3Z";
const pending = { state: "pending", msg_id: ID, delivered: true };
const reply = { state: "reply", msg_id: ID, from: "b", text: "hi", replied_at: 1 };
const failed = { state: "error", msg_id: ID, code: "PEER_GONE", message: "gone" };
const outcomeBatches: unknown[] = [
  [],
  [{ seq: 1, outcome: pending }],
  [
    { seq: 2, outcome: reply },
    { seq: 3, outcome: failed },
  ],
  [{ seq: 1, outcome: { ...reply, value: { a: 1 } } }],
  [{ seq: 1, outcome: { ...pending, recipient: "offline" } }],
  [{ seq: 1, outcome: { ...pending, recipient: "nowhere" } }],
  [{ seq: 1, outcome: { ...pending, extra: 1 } }],
  [{ seq: 1, outcome: pending, extra: 1 }],
  [{ seq: 1, outcome: { ...pending, delivered: "yes" } }],
  [{ seq: 1, outcome: { ...pending, msg_id: "not-a-ulid" } }],
  [{ seq: 1, outcome: { ...reply, from: "-bad" } }],
  [{ seq: 1, outcome: { ...reply, from: "x".repeat(65) } }],
  [{ seq: 1, outcome: { ...reply, replied_at: 1.5 } }],
  [{ seq: 1, outcome: { ...reply, text: 7 } }],
  [{ seq: 1, outcome: { ...failed, code: "NOPE" } }],
  [{ seq: 1, outcome: { ...failed, message: undefined } }],
  [{ seq: 0, outcome: pending }],
  [{ seq: 1.5, outcome: pending }],
  [{ seq: Number.MAX_SAFE_INTEGER + 2, outcome: pending }],
  [{ seq: 1, outcome: { ...pending, state: "other" } }],
  [{ seq: 1 }],
  [null],
  Array.from({ length: 1024 }, (_, i) => ({ seq: i + 1, outcome: pending })),
  Array.from({ length: 1025 }, (_, i) => ({ seq: i + 1, outcome: pending })),
  { seq: 1, outcome: pending },
  null,
];

/** The fields the transport reads of each kind of frame. */
const READ: Record<string, string[]> = {
  req: ["k", "id", "type", "path", "input"],
  stop: ["k", "id"],
  data: ["k", "id", "data"],
  started: ["k", "id"],
  stopped: ["k", "id"],
  error: ["k", "id", "error"],
};

function fields(frame: { k: string }): Record<string, unknown> {
  const record = frame as unknown as Record<string, unknown>;
  return Object.fromEntries((READ[frame.k] ?? []).map((key) => [key, record[key]]));
}

describe("frame checks", () => {
  it("accept and refuse client frames exactly as ClientFrame does", () => {
    for (const frame of clientFrames) {
      const fast = parseClientFrame(frame);
      const zod = ClientFrame.safeParse(frame);
      assert.equal(fast.success, zod.success, JSON.stringify(frame));
      if (fast.success && zod.success) {
        assert.deepEqual(fields(fast.data), fields(zod.data), JSON.stringify(frame));
      } else if (!fast.success && !zod.success) {
        assert.deepEqual(fast.error.issues, zod.error.issues);
      }
    }
  });

  it("accept and refuse server frames exactly as ServerFrame does", () => {
    for (const frame of serverFrames) {
      const fast = parseServerFrame(frame);
      const zod = ServerFrame.safeParse(frame);
      assert.equal(fast.success, zod.success, JSON.stringify(frame));
      if (fast.success && zod.success) {
        assert.deepEqual(fields(fast.data), fields(zod.data), JSON.stringify(frame));
      }
    }
  });

  it("accept outcome batches exactly as OutcomeBatch does, with the same data", () => {
    for (const batch of outcomeBatches) {
      const fast = parseOutcomeBatch(batch);
      const zod = OutcomeBatch.safeParse(batch);
      const label = JSON.stringify(batch).slice(0, 200);
      assert.equal(fast.success, zod.success, label);
      if (fast.success && zod.success) assert.deepEqual(fast.data, zod.data, label);
    }
  });
});

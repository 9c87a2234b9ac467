import assert from "node:assert/strict";
import { test } from "node:test";
import superjson from "superjson";
import { deserializeWire, serializeWire } from "../lib/wire-transformer.ts";

const shared = { s: 1 };
const cases: Array<[string, unknown]> = [
  [
    "message event",
    {
      kind: "message",
      message: { msg_id: "01J", from: "a", hops: 1, prompt: 'hi\n"x" ü', created_at: 1732500000000 },
    },
  ],
  [
    "peers delta",
    {
      kind: "peers",
      agents: [{ id: "x", context_used_pct: null, explicit: false, queue_depth: 0 }],
      delta: true,
      removed: [],
    },
  ],
  ["nested array", [1, 2.5, { a: [true, null, ""] }]],
  ["string", "s"],
  ["number", 3],
  ["null", null],
  ["boolean", false],
  ["undefined member", { a: undefined, b: 1 }],
  ["undefined", undefined],
  ["date", { d: new Date(0) }],
  ["NaN", Number.NaN],
  ["infinity", { n: Number.POSITIVE_INFINITY }],
  ["negative zero", -0],
  // biome-ignore lint/suspicious/noSparseArray: a hole is the case under test
  ["sparse array", [1, , 3]],
  ["map", new Map([[1, 2]])],
  ["shared reference", { a: shared, b: shared }],
  ["bigint", { n: 10n }],
];

test("the wire transformer writes exactly what superjson writes, and reads it back the same", () => {
  for (const [name, value] of cases) {
    const wire = JSON.stringify(serializeWire(value));
    assert.equal(wire, JSON.stringify(superjson.serialize(value)), name);
    const back = deserializeWire(JSON.parse(wire));
    const reference = superjson.deserialize(JSON.parse(wire));
    assert.deepEqual(back, reference, name);
  }
});

test("annotated payloads from clients are decoded by superjson", () => {
  const payload = JSON.parse(JSON.stringify(superjson.serialize({ at: new Date(5), n: undefined })));
  assert.deepEqual(deserializeWire(payload), { at: new Date(5), n: undefined });
});

test("inputs with keys that could reach a prototype are decoded as superjson decodes them", () => {
  for (const text of [
    '{"json":{"a":{"__proto__":{"polluted":1}}}}',
    '{"json":{"constructor":{"prototype":{"polluted":1}}}}',
    '{"json":[{"prototype":1}]}',
  ]) {
    const back = deserializeWire(JSON.parse(text));
    assert.deepEqual(back, superjson.deserialize(JSON.parse(text)), text);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, text);
  }
});

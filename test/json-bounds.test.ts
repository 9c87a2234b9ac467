/** The iterative depth and size check behind every input bound (contract/json-bounds.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkJsonBounds,
  checkSchemaBounds,
  MAX_SCHEMA_DEPTH,
  MAX_SCHEMA_VALUES,
} from "../contract/json-bounds.ts";
import { compileResponseSchema } from "../contract/response-schema.ts";
import { SendInput } from "../contract/schemas.ts";
import { deserializeWire, serializeWire } from "../lib/wire-transformer.ts";

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { type: "string" };
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe("json bounds", () => {
  it("counts depth as levels of objects and arrays; a leaf has none", () => {
    assert.deepEqual(checkJsonBounds("x", "v", 0), { ok: true });
    assert.deepEqual(checkJsonBounds({}, "v", 1), { ok: true });
    assert.equal(checkJsonBounds({}, "v", 0).ok, false);
    assert.deepEqual(checkJsonBounds([[1]], "v", 2), { ok: true });
    assert.equal(checkJsonBounds([[[1]]], "v", 2).ok, false);
  });

  it("a million levels are checked without recursion, and the message names the limit", () => {
    const check = checkJsonBounds(nested(1_000_000), "input", 256);
    assert.deepEqual(check, { ok: false, message: "input is nested deeper than 256 levels (limit 256)" });
  });

  it("a cycle (from a caller in the same process) ends at the depth bound", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(checkJsonBounds(cyclic, "input", 256).ok, false);
  });

  it("response_schema: at most 64 levels and 100,000 values", () => {
    // nested(n) has n + 1 levels of objects.
    assert.equal(checkSchemaBounds(nested(MAX_SCHEMA_DEPTH - 1)).ok, true);
    assert.match(
      (checkSchemaBounds(nested(MAX_SCHEMA_DEPTH)) as { message: string }).message,
      /nested deeper than 64 levels \(limit 64\)/,
    );
    const wide = { enum: Array.from({ length: MAX_SCHEMA_VALUES }, (_, i) => i) };
    assert.match((checkSchemaBounds(wide) as { message: string }).message, /more than 100000 values/);
    const parsed = SendInput.safeParse({ to: "b", prompt: "x", response_schema: nested(1500) });
    assert.equal(parsed.success, false);
    assert.match(JSON.stringify(parsed.error?.issues), /limit 64/);
    const compiled = compileResponseSchema(nested(5000));
    assert.equal(compiled.ok, false);
    assert.match((compiled as { message: string }).message, /limit 64/);
  });

  it("the wire transformer refuses input past 256 levels both ways, with BAD_INPUT", () => {
    const deep = nested(300);
    assert.throws(() => serializeWire(deep), { name: "ComsError", code: "BAD_INPUT" });
    const raw = JSON.parse(`{"json":${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}}`);
    assert.throws(() => deserializeWire(raw), { name: "ComsError", code: "BAD_INPUT", message: /limit 256/ });
    // Within bounds, deep-ish values still round trip (past the plain-JSON fast path's 32 levels).
    const ok = nested(200);
    assert.deepEqual(deserializeWire(JSON.parse(JSON.stringify(serializeWire(ok)))), ok);
  });
});

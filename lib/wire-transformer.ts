/**
 * The router's transformer (superjson) with a fast path for plain JSON, used
 * by both transports. A tree of strings, finite numbers, booleans, null,
 * arrays and plain objects, each object met once, serializes as
 * `{ json: value }`: byte for byte what superjson writes for it, without
 * superjson's annotation walk (profiled: the largest single cost of a small
 * frame or SSE event). Reading such a payload back skips superjson's deep
 * copy. Everything else (undefined, dates, maps, BigInt, NaN, -0, shared
 * references, sparse arrays, `__proto__`-like keys) goes through superjson,
 * so the wire format is the same for every client.
 */
import superjson from "superjson";
import { ComsError } from "../contract/errors.ts";
import { checkJsonBounds, MAX_INPUT_DEPTH } from "../contract/json-bounds.ts";

/** Deeper trees take superjson's path. */
const MAX_FAST_DEPTH = 32;

function isPlainJson(value: unknown, depth: number, seen: Set<object>): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      // superjson annotates NaN, ±Infinity and -0.
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object": {
      if (value === null) return true;
      if (depth >= MAX_FAST_DEPTH || seen.has(value)) return false;
      seen.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          // A hole reads as undefined, which superjson annotates.
          if (!(i in value) || !isPlainJson(value[i], depth + 1, seen)) return false;
        }
        return true;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      if (Object.getOwnPropertySymbols(value).length > 0) return false;
      for (const key in value) {
        // Keys that could reach a prototype when copied later are left to superjson's sanitising copy.
        if (key === "__proto__" || key === "constructor" || key === "prototype") return false;
        if (!Object.hasOwn(value, key)) return false;
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1, seen)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * isPlainJson for a value JSON.parse just made: it has no shared or cyclic
 * parts, no symbols and no other prototypes, so only the depth and the keys
 * that could reach a prototype when copied later are left to check. (Any
 * other value given here still fails on its prototype, or on its depth if
 * it loops.)
 */
function isParsedPlain(value: unknown, depth: number): boolean {
  if (typeof value !== "object" || value === null) return typeof value !== "number" || !Object.is(value, -0);
  if (depth >= MAX_FAST_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isParsedPlain(value[i], depth + 1)) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) {
    if (key === "__proto__" || key === "constructor" || key === "prototype") return false;
    if (!isParsedPlain((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** One set for every check: a check runs to its end synchronously, so none can overlap another. */
const SEEN = new Set<object>();

/** Whether `value` is plain JSON (see the top of this file). */
function plain(value: unknown): boolean {
  try {
    return isPlainJson(value, 0, SEEN);
  } finally {
    SEEN.clear();
  }
}

/**
 * Refuse (BAD_INPUT) a value nested past MAX_INPUT_DEPTH before superjson's
 * recursive walks see it: a deep enough tree overflows the stack there, and a
 * stack overflow must never be what answers a request or ends a stream.
 */
function assertBounded(value: unknown, what: string, maxDepth = MAX_INPUT_DEPTH): void {
  const check = checkJsonBounds(value, what, maxDepth);
  if (!check.ok) throw new ComsError("BAD_INPUT", check.message);
}

/**
 * What a server sends wraps what it was given (an outcome batch holds events
 * holding outcomes holding a reply value), so answers get a few levels more
 * than inputs; this bound only keeps superjson's recursion safe.
 */
export const MAX_OUTPUT_DEPTH = MAX_INPUT_DEPTH + 16;

/** superjson's annotations mirror the value's tree, two levels per level of the value. */
const MAX_META_DEPTH = 2 * MAX_OUTPUT_DEPTH + 8;

export function serializeWire(value: unknown): unknown {
  if (plain(value)) return { json: value };
  assertBounded(value, "value", MAX_OUTPUT_DEPTH);
  return superjson.serialize(value);
}

/** What superjson writes for `undefined`: the answer of every procedure that returns nothing (settle, ack). */
const UNDEFINED_JSON = JSON.stringify(superjson.serialize(undefined));

/** `JSON.stringify(serializeWire(value))`, without building the wrapper for plain JSON. */
export function wireJson(value: unknown): string {
  if (value === undefined) return UNDEFINED_JSON;
  if (plain(value)) return `{"json":${JSON.stringify(value)}}`;
  assertBounded(value, "value", MAX_OUTPUT_DEPTH);
  return JSON.stringify(superjson.serialize(value));
}

/** Decode a payload: a request input (bounded by MAX_INPUT_DEPTH) unless told it is an answer. */
export function deserializeWire(payload: unknown, what = "input", maxDepth = MAX_INPUT_DEPTH): unknown {
  if (
    maxDepth >= MAX_FAST_DEPTH &&
    typeof payload === "object" &&
    payload !== null &&
    Object.getPrototypeOf(payload) === Object.prototype &&
    Object.hasOwn(payload, "json") &&
    !Object.hasOwn(payload, "meta")
  ) {
    const { json } = payload as { json: unknown };
    // Freshly parsed and held by nobody else: no copy needed once it is known to be plain. Plain
    // JSON is never deeper than MAX_FAST_DEPTH, so it is within the bound without a second walk.
    if (isParsedPlain(json, 0)) return json;
  }
  if (typeof payload === "object" && payload !== null && Object.hasOwn(payload, "json")) {
    const { json, meta } = payload as { json: unknown; meta?: unknown };
    assertBounded(json, what, maxDepth);
    if (meta !== undefined) assertBounded(meta, `${what} annotations`, MAX_META_DEPTH);
  } else assertBounded(payload, what, maxDepth);
  return superjson.deserialize(payload as Parameters<typeof superjson.deserialize>[0]);
}

/** Decode what a server answered (a call's result, a stream event). */
export function deserializeAnswer(payload: unknown): unknown {
  return deserializeWire(payload, "answer", MAX_OUTPUT_DEPTH);
}

/** Shaped for tRPC routers: inputs are decoded under the input bound. */
export const wireTransformer = {
  serialize: serializeWire,
  deserialize: (payload: unknown) => deserializeWire(payload),
};

/** Shaped for tRPC client links: answers are decoded under the (slightly larger) answer bound. */
export const clientWireTransformer = { serialize: serializeWire, deserialize: deserializeAnswer };

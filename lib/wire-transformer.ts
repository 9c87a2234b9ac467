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

export function serializeWire(value: unknown): unknown {
  if (isPlainJson(value, 0, new Set())) return { json: value };
  return superjson.serialize(value);
}

/** `JSON.stringify(serializeWire(value))`, without building the wrapper for plain JSON. */
export function wireJson(value: unknown): string {
  if (isPlainJson(value, 0, new Set())) return `{"json":${JSON.stringify(value)}}`;
  return JSON.stringify(superjson.serialize(value));
}

export function deserializeWire(payload: unknown): unknown {
  if (
    typeof payload === "object" &&
    payload !== null &&
    Object.getPrototypeOf(payload) === Object.prototype &&
    Object.hasOwn(payload, "json") &&
    !Object.hasOwn(payload, "meta")
  ) {
    const { json } = payload as { json: unknown };
    // Freshly parsed and held by nobody else: no copy needed once it is known to be plain.
    if (isPlainJson(json, 0, new Set())) return json;
  }
  return superjson.deserialize(payload as Parameters<typeof superjson.deserialize>[0]);
}

/** Shaped for tRPC (links and routers): the same functions both ways. */
export const wireTransformer = { serialize: serializeWire, deserialize: deserializeWire };

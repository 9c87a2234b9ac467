/**
 * The router's transformer (superjson) as the hub serves it, with a fast path
 * for plain JSON. A tree of strings, finite numbers, booleans, null, arrays
 * and plain objects (each object met once) serializes as `{ json: value }`,
 * byte for byte what superjson produces for it, without superjson's
 * annotation walk (profiled: the largest single cost of an SSE event, and
 * most of a peers broadcast). Incoming payloads without annotations are
 * taken as parsed instead of deep-copied. Anything else (dates, undefined,
 * NaN, -0, shared references...) goes through superjson itself, so the wire
 * format is unchanged for every client.
 */
import superjson from "superjson";

const MAX_DEPTH = 64;

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
      if (depth > MAX_DEPTH || seen.has(value)) return false;
      seen.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          // A hole reads as undefined, which superjson annotates.
          if (!isPlainJson(value[i], depth + 1, seen)) return false;
        }
        return true;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) return false;
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1, seen)) return false;
      }
      // Symbol keys would be dropped by JSON but not by every transformer: let superjson decide.
      return Object.getOwnPropertySymbols(value).length === 0;
    }
    default:
      return false;
  }
}

export function serializeWire(value: unknown): unknown {
  if (isPlainJson(value, 0, new Set())) return { json: value };
  return superjson.serialize(value);
}

export function deserializeWire(payload: unknown): unknown {
  if (
    typeof payload === "object" &&
    payload !== null &&
    !Array.isArray(payload) &&
    Object.getPrototypeOf(payload) === Object.prototype &&
    Object.hasOwn(payload, "json") &&
    !Object.hasOwn(payload, "meta")
  ) {
    // Freshly parsed from the request: nobody else holds it, so no copy is needed.
    return (payload as { json: unknown }).json;
  }
  return superjson.deserialize(payload as Parameters<typeof superjson.deserialize>[0]);
}

/** For tRPC client links: same wire format, cheaper on the receiving side of every SSE event. */
export const wireTransformer = { serialize: serializeWire, deserialize: deserializeWire };

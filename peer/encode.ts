/**
 * The router's transformer (superjson) on the encoding side, with a fast path:
 * a tree of plain JSON values (strings, finite numbers, booleans, null, arrays
 * and plain objects, each object met once) encodes as `{ json: value }`,
 * exactly what superjson produces for it, without superjson's annotation walk.
 * Anything else (undefined, Date, Map, BigInt, NaN, -0, class instances,
 * shared or cyclic references, odd keys) goes through superjson itself.
 */
import { comsRouter } from "../contract/router.ts";

const transformer = comsRouter._def._config.transformer;

/** Deeper trees take the general path (and a stack-safe one). */
const MAX_FAST_DEPTH = 32;

export function encode(value: unknown): unknown {
  if (isPlainJson(value, 0, undefined)) return { json: value };
  return transformer.output.serialize(value);
}

function isPlainJson(value: unknown, depth: number, seen: Set<object> | undefined): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object": {
      if (value === null) return true;
      if (depth >= MAX_FAST_DEPTH) return false;
      const objects = seen ?? new Set<object>();
      if (objects.has(value)) return false;
      objects.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !isPlainJson(value[i], depth + 1, objects)) return false;
        }
        return true;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      if (Object.getOwnPropertySymbols(value).length > 0) return false;
      for (const key in value) {
        if (key === "__proto__" || key === "constructor" || key === "prototype") return false;
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1, objects)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

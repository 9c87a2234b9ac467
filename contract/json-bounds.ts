/**
 * Depth and size bounds for nested input, checked by an iterative walk so a
 * hostile value cannot overflow the stack of the check itself. Everything
 * recursive that touches a value later (superjson, JSON.stringify, zod's
 * JSON Schema compiler) runs only on values that passed.
 */

/** Nesting any decoded request input may have (objects and arrays count one level each). */
export const MAX_INPUT_DEPTH = 256;
/** Nesting a response_schema may have: real schemas are a handful of levels deep. */
export const MAX_SCHEMA_DEPTH = 64;
/** Values (objects, arrays and leaves) a response_schema may hold. */
export const MAX_SCHEMA_VALUES = 100_000;

export type BoundsCheck = { ok: true } | { ok: false; message: string };

/**
 * Whether `value` stays within `maxDepth` levels of nesting and `maxValues`
 * values in all. A bare leaf has depth 0, `{}` and `[]` depth 1. Stops at the
 * first excess, so the cost is bounded by the limits, not by the value.
 */
export function checkJsonBounds(
  value: unknown,
  what: string,
  maxDepth: number,
  maxValues = Number.POSITIVE_INFINITY,
): BoundsCheck {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  let values = 0;
  while (stack.length > 0) {
    const top = stack.pop() as { value: unknown; depth: number };
    values++;
    if (values > maxValues) {
      return { ok: false, message: `${what} holds more than ${maxValues} values (limit ${maxValues})` };
    }
    const item = top.value;
    if (typeof item !== "object" || item === null) continue;
    const depth = top.depth + 1;
    if (depth > maxDepth) {
      return { ok: false, message: `${what} is nested deeper than ${maxDepth} levels (limit ${maxDepth})` };
    }
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) stack.push({ value: item[i], depth });
    } else {
      for (const key in item) {
        if (Object.hasOwn(item, key)) stack.push({ value: (item as Record<string, unknown>)[key], depth });
      }
    }
  }
  return { ok: true };
}

/** The response_schema bounds (depth and size); the message names the limit crossed. */
export function checkSchemaBounds(schema: unknown): BoundsCheck {
  return checkJsonBounds(schema, "response_schema", MAX_SCHEMA_DEPTH, MAX_SCHEMA_VALUES);
}

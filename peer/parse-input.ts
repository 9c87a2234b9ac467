/**
 * Input validation for the node's own API: a caller's mistake becomes a
 * BAD_INPUT naming every offending field, not a bare zod error.
 */
import type { z } from "zod";
import { ComsError } from "../contract/errors.ts";

export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ComsError(
      "BAD_INPUT",
      parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    );
  }
  return parsed.data;
}

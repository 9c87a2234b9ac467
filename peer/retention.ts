/**
 * How much a P2P node keeps of what is finished: settled inbound messages
 * (for a sender's late `get` or a resumed outcome stream) and final outcomes
 * of its own sends (for a late `get`/`await`). Bounded by count and by bytes,
 * so that a long-lived session with large prompts or replies stays small.
 */

import type { Outcome } from "../contract/schemas.ts";
import { serializeWire } from "../lib/wire-transformer.ts";
import { MAX_FRAME_BYTES } from "./ipc.ts";

export interface RetentionLimit {
  /** Entries kept at most. */
  count: number;
  /** Approximate bytes (UTF-16 strings, plus a fixed overhead per entry) kept at most. */
  bytes: number;
}

/** What is kept now (for diagnostics and tests). */
export interface Retained {
  count: number;
  bytes: number;
}

/** Bookkeeping per entry that is not its strings: ids, timestamps, map slots. */
const ENTRY_OVERHEAD = 256;

/**
 * The approximate heap size of a value: 2 bytes per string unit, 8 per other
 * leaf. Iterative (a deep reply value cannot overflow the stack here) and
 * capped at `cap`, so the estimate never costs more than the value is allowed to.
 */
export function approxBytes(value: unknown, cap = Number.MAX_SAFE_INTEGER): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && total < cap) {
    const next = stack.pop();
    if (typeof next === "string") total += 2 * next.length;
    else if (next !== null && typeof next === "object") {
      for (const [key, child] of Object.entries(next)) {
        total += 2 * key.length + 8;
        stack.push(child);
      }
    } else total += 8;
  }
  return Math.min(total, cap);
}

/**
 * An upper bound on an outcome's encoded size: JSON escaping turns one UTF-16
 * unit into at most six bytes (approxBytes counts two per unit).
 */
export function wireBound(outcome: Outcome): number {
  return 3 * outcomeBytes(outcome);
}

export function outcomeBytes(outcome: Outcome): number {
  switch (outcome.state) {
    case "reply":
      return (
        ENTRY_OVERHEAD +
        2 * outcome.text.length +
        (outcome.value === undefined ? 0 : approxBytes(outcome.value))
      );
    case "error":
      return ENTRY_OVERHEAD + 2 * outcome.message.length;
    default:
      return ENTRY_OVERHEAD;
  }
}

/**
 * Why an outcome cannot travel to its sender in one frame (a reply value too
 * deep for the serializer or too large), or undefined when it can. A plain
 * text reply always fits (the frame limit is sized for the longest text), so
 * only a structured value is encoded here to find out.
 */
export function unsendable(outcome: Outcome): string | undefined {
  if (outcome.state !== "reply" || outcome.value === undefined) return undefined;
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(serializeWire({ seq: 0, outcome })));
  } catch (error) {
    return `the reply's value cannot be serialized (${error instanceof Error ? error.message : String(error)})`;
  }
  // Batches are cut by size (wireBound), so one outcome only needs to fit a frame by itself.
  if (bytes > MAX_FRAME_BYTES - 1024)
    return `the reply is ${bytes} bytes encoded, over the ${MAX_FRAME_BYTES}-byte frame limit`;
  return undefined;
}

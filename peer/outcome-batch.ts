/** The shape a `messages.outcomes` batch must have before the sender believes any of it. */
import { z } from "zod";
import { ErrorCode, Outcome } from "../contract/schemas.ts";

export const OutcomeBatch = z
  .array(z.object({ seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), outcome: Outcome }))
  .max(1024);
export type OutcomeBatch = z.infer<typeof OutcomeBatch>;

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CODES: ReadonlySet<unknown> = new Set(ErrorCode.options);

function keyCount(value: object): number {
  let n = 0;
  for (const _ in value) n++;
  return n;
}

/** Plainly one of the Outcome shapes, with no key zod would strip (the object is kept as is). */
function plainOutcome(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return false;
  const o = value as Record<string, unknown>;
  if (typeof o.msg_id !== "string" || !ULID.test(o.msg_id)) return false;
  switch (o.state) {
    case "pending":
      return typeof o.delivered === "boolean" && keyCount(o) === 3;
    case "reply":
      return (
        typeof o.from === "string" &&
        NAME.test(o.from) &&
        typeof o.text === "string" &&
        Number.isSafeInteger(o.replied_at) &&
        keyCount(o) === 5
      );
    case "error":
      return CODES.has(o.code) && typeof o.message === "string" && keyCount(o) === 4;
    default:
      return false;
  }
}

/**
 * OutcomeBatch.safeParse, with zod run only for a batch that is not plainly
 * its common shapes (a reply with a value, a hub's `recipient`, anything
 * odd): every outcome batch a sender reads went through zod before, a fifth
 * of what it spent on one. What is accepted here zod accepts unchanged.
 */
export function parseOutcomeBatch(data: unknown): ReturnType<typeof OutcomeBatch.safeParse> {
  if (Array.isArray(data) && data.length <= 1024) {
    let plain = true;
    for (const item of data) {
      if (
        typeof item !== "object" ||
        item === null ||
        Object.getPrototypeOf(item) !== Object.prototype ||
        !Number.isSafeInteger(item.seq) ||
        item.seq < 1 ||
        !plainOutcome(item.outcome) ||
        keyCount(item) !== 2
      ) {
        plain = false;
        break;
      }
    }
    if (plain) return { success: true, data: data as OutcomeBatch };
  }
  return OutcomeBatch.safeParse(data);
}

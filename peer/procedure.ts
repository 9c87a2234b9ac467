/**
 * Dispatch of one socket request to the router's procedure at `path`, run
 * through the shared served router (same middlewares, cheaper copying; see
 * lib/served-router.ts). Only the router's own entries are looked up, never
 * a prototype property, and the procedure must be of the requested type.
 */
import { TRPCError } from "@trpc/server";
import type { RequestFrame } from "../contract/frames.ts";
import { type ComsContext, comsRouter } from "../contract/router.ts";
import { type ServedProcedure, servedRouter } from "../lib/served-router.ts";

export interface CallOptions {
  path: string;
  type: RequestFrame["type"];
  ctx: ComsContext;
  /** The decoded input; the served router takes it as is, without a promise. */
  getRawInput: () => unknown;
  signal?: AbortSignal;
}

const procedures = servedRouter(comsRouter)._def.procedures as unknown as Record<string, ServedProcedure>;

export function callProcedure(opts: CallOptions): Promise<unknown> {
  const procedure = Object.hasOwn(procedures, opts.path) ? procedures[opts.path] : undefined;
  if (typeof procedure !== "function" || procedure._def?.type !== opts.type) {
    throw new TRPCError({ code: "NOT_FOUND", message: `No "${opts.type}"-procedure on path "${opts.path}"` });
  }
  // The served procedure makes its own copy of the options.
  return procedure(opts as CallOptions & Record<string, unknown>);
}

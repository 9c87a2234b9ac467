/**
 * Error answers in tRPC's wire shape, built with tRPC's own shape function,
 * so the router's error formatter (coms_code) runs exactly as under tRPC's
 * adapters and every client link reads them the same way.
 */
import { type AnyTRPCRouter, getTRPCErrorFromUnknown, type TRPCError } from "@trpc/server";
import { getErrorShape, getHTTPStatusCode } from "@trpc/server/unstable-core-do-not-import";
import type { ComsContext } from "../../contract/router.ts";

export type CallType = "query" | "mutation" | "subscription" | "unknown";

export interface FailedCall {
  error: TRPCError;
  type: CallType;
  path: string | undefined;
  input: unknown;
  ctx: ComsContext | undefined;
}

/** The formatted error shape (before the transformer). */
export function errorShape(router: AnyTRPCRouter, call: FailedCall): unknown {
  return getErrorShape({
    config: router._def._config,
    error: call.error,
    type: call.type,
    path: call.path,
    input: call.input,
    ctx: call.ctx,
  });
}

/** `{"error": <serialized shape>}` as one response item of tRPC's HTTP protocol. */
export function errorItem(router: AnyTRPCRouter, call: FailedCall): { json: string; shape: unknown } {
  const shape = errorShape(router, call);
  const json = JSON.stringify({ error: router._def._config.transformer.output.serialize(shape) });
  return { json, shape };
}

/** The HTTP status of one or several items, as tRPC computes it (207 when they differ). */
export function statusOf(
  items: Array<{ shape?: unknown } | undefined>,
  errors: Array<TRPCError | undefined>,
): number {
  return getHTTPStatusCode(
    items.map((item) =>
      item?.shape === undefined ? { result: { data: null } } : { error: item.shape },
    ) as never,
    errors,
  );
}

export { getTRPCErrorFromUnknown };

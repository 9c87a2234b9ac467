/**
 * Runs a procedure of the coms router the way tRPC's own caller does: the
 * same middlewares (auth, input parser, output parser, resolver) in the same
 * order, each handed the options plus `meta`, `input` and `next`, a `next`
 * merging the context and input the same way, a throw becoming a TRPCError
 * result. The difference is the copying: tRPC's build copies the options
 * with a transpiled spread helper at every level (~14 µs of a ~18 µs call,
 * measured), this uses native spreads (~4.5 µs). A procedure whose shape is
 * not the expected one is called through tRPC itself.
 */
import { getTRPCErrorFromUnknown, TRPCError } from "@trpc/server";
import type { RequestFrame } from "../contract/frames.ts";
import { type ComsContext, comsRouter } from "../contract/router.ts";

export interface CallOptions {
  path: string;
  type: RequestFrame["type"];
  ctx: ComsContext;
  getRawInput: () => Promise<unknown>;
  signal?: AbortSignal;
}

interface MiddlewareResult {
  ok: boolean;
  data?: unknown;
  error?: unknown;
}

type Middleware = (opts: Record<string, unknown>) => Promise<MiddlewareResult>;

interface NextOptions {
  ctx?: Record<string, unknown>;
  input?: unknown;
  getRawInput?: () => Promise<unknown>;
}

type Procedure = ((opts: CallOptions) => Promise<unknown>) & {
  _def?: { type?: unknown; meta?: unknown; middlewares?: unknown };
};

const procedures = comsRouter._def.procedures as Record<string, unknown>;

/** Call the procedure at `path` (own router entries only, never a prototype lookup) if it is of `type`. */
export function callProcedure(opts: CallOptions): Promise<unknown> {
  const procedure = Object.hasOwn(procedures, opts.path) ? (procedures[opts.path] as Procedure) : undefined;
  const def = typeof procedure === "function" ? procedure._def : undefined;
  if (!procedure || def?.type !== opts.type) {
    throw new TRPCError({ code: "NOT_FOUND", message: `No "${opts.type}"-procedure on path "${opts.path}"` });
  }
  const middlewares = def.middlewares;
  if (!Array.isArray(middlewares) || !middlewares.every((m) => typeof m === "function"))
    return procedure(opts);
  return run(middlewares as Middleware[], def.meta, opts);
}

async function run(middlewares: Middleware[], meta: unknown, opts: CallOptions): Promise<unknown> {
  const result = await step(middlewares, meta, 0, { ...opts, input: undefined });
  if (!result) {
    throw new TRPCError({
      code: "INTERNAL_SERVER_ERROR",
      message: "No result from middlewares - did you forget to `return next()`?",
    });
  }
  if (!result.ok) throw result.error;
  return result.data;
}

async function step(
  middlewares: Middleware[],
  meta: unknown,
  index: number,
  opts: Record<string, unknown>,
): Promise<MiddlewareResult> {
  try {
    const middleware = middlewares[index] as Middleware;
    return await middleware({
      ...opts,
      meta,
      input: opts.input,
      next: (next?: NextOptions) =>
        step(middlewares, meta, index + 1, {
          ...opts,
          ctx: next?.ctx ? { ...(opts.ctx as Record<string, unknown>), ...next.ctx } : opts.ctx,
          input: next && "input" in next ? next.input : opts.input,
          getRawInput: next?.getRawInput ?? opts.getRawInput,
        }),
    });
  } catch (cause) {
    return { ok: false, error: getTRPCErrorFromUnknown(cause) };
  }
}

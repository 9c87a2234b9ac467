/**
 * The coms router as the servers run it: the same procedures, middlewares,
 * error formatter and SSE options, with two cheaper internals shared by the
 * socket and HTTP transports. The transformer is the plain-JSON fast path
 * (same bytes on the wire), and each procedure runs its middleware chain
 * (auth, input parser, output parser, resolver) the way tRPC's own caller
 * does, in the same order with the same option merging, but copies the
 * options with native object spreads instead of the transpiled spread helper
 * in tRPC's build (profiled: ~14 of ~18 µs per call on a socket, ~7% of the
 * hub's CPU). The input and output validators are tRPC's, rebuilt from the
 * same schemas with tRPC's own parse functions (same errors), without the
 * spread helper and without awaiting a parse that answered at once (zod's
 * does): a third of what is left of a call. It relies on the shape of tRPC
 * 11's procedure definitions (pinned); a procedure shaped otherwise keeps
 * tRPC's own caller, or its own validators.
 */
import { type AnyTRPCRouter, getTRPCErrorFromUnknown, TRPCError } from "@trpc/server";
import { getParseFn, isObject, isPromise } from "@trpc/server/unstable-core-do-not-import";
import { wireTransformer } from "./wire-transformer.ts";

type Options = Record<string, unknown> & { ctx?: unknown; input?: unknown; getRawInput?: unknown };
type Middleware = (opts: Options) => Promise<MiddlewareResult>;
type MiddlewareResult = { ok: boolean; data?: unknown; error?: unknown } | undefined;
interface ProcedureDef {
  type?: unknown;
  meta?: unknown;
  middlewares: Middleware[];
  /** The schemas of the `.input()` calls, in the order of their validators in `middlewares`. */
  inputs?: unknown[];
  output?: unknown;
}
type ParseFn = (value: unknown) => unknown;
export type ServedProcedure = ((opts: Options) => Promise<unknown>) & {
  _def: ProcedureDef;
  procedure?: true;
  meta?: unknown;
};

/** What tRPC marks a failed middleware result with. */
const MIDDLEWARE_MARKER = "middlewareMarker";

async function callChain(index: number, def: ProcedureDef, opts: Options): Promise<MiddlewareResult> {
  try {
    const middleware = def.middlewares[index] as Middleware;
    return await middleware({
      ...opts,
      meta: def.meta,
      input: opts.input,
      next(nextOpts?: { ctx?: object; input?: unknown; getRawInput?: unknown }) {
        return callChain(index + 1, def, {
          ...opts,
          ctx: nextOpts?.ctx ? { ...(opts.ctx as object), ...nextOpts.ctx } : opts.ctx,
          input: nextOpts && "input" in nextOpts ? nextOpts.input : opts.input,
          getRawInput: nextOpts?.getRawInput ?? opts.getRawInput,
        });
      },
    });
  } catch (cause) {
    return {
      ok: false,
      error: getTRPCErrorFromUnknown(cause),
      marker: MIDDLEWARE_MARKER,
    } as MiddlewareResult;
  }
}

/** A parse result, awaited only when the parser went asynchronous. */
async function parsed(parse: ParseFn, value: unknown): Promise<unknown> {
  const result = parse(value);
  return isPromise(result) ? await result : result;
}

/** tRPC's input validator (createInputMiddleware), with native spreads. */
function inputValidator(parse: ParseFn): Middleware {
  const validator = async (opts: Options & { next(o: { input: unknown }): Promise<MiddlewareResult> }) => {
    const raw = await (opts.getRawInput as () => Promise<unknown>)();
    let input: unknown;
    try {
      input = await parsed(parse, raw);
    } catch (cause) {
      throw new TRPCError({ code: "BAD_REQUEST", cause });
    }
    return opts.next({
      input: isObject(opts.input) && isObject(input) ? { ...opts.input, ...input } : input,
    });
  };
  return Object.assign(validator, { _type: "input" }) as unknown as Middleware;
}

/** tRPC's output validator (createOutputMiddleware), with native spreads. */
function outputValidator(parse: ParseFn): Middleware {
  const validator = async (opts: { next(): Promise<MiddlewareResult> }) => {
    const result = await opts.next();
    if (!result?.ok) return result;
    try {
      return { ...result, data: await parsed(parse, result.data) };
    } catch (cause) {
      throw new TRPCError({ message: "Output validation failed", code: "INTERNAL_SERVER_ERROR", cause });
    }
  };
  return Object.assign(validator, { _type: "output" }) as unknown as Middleware;
}

/** The chain with tRPC's validators rebuilt, or undefined when they cannot be matched to their schemas. */
function withNativeValidators(def: ProcedureDef): Middleware[] | undefined {
  const kinds = def.middlewares.map((middleware) => (middleware as { _type?: unknown })._type);
  const inputs = Array.isArray(def.inputs) ? def.inputs : [];
  const outputs = def.output === undefined ? 0 : 1;
  if (kinds.filter((kind) => kind === "input").length !== inputs.length) return undefined;
  if (kinds.filter((kind) => kind === "output").length !== outputs) return undefined;
  let next = 0;
  try {
    return def.middlewares.map((middleware, i) => {
      if (kinds[i] === "input") return inputValidator(getParseFn(inputs[next++] as never) as ParseFn);
      if (kinds[i] === "output") return outputValidator(getParseFn(def.output as never) as ParseFn);
      return middleware;
    });
  } catch {
    // A schema tRPC's parse functions do not know: its own validators stay.
    return undefined;
  }
}

function withNativeSpreads(procedure: ServedProcedure): ServedProcedure {
  const def = procedure._def;
  if (!Array.isArray(def?.middlewares) || !def.middlewares.every((m) => typeof m === "function")) {
    return procedure;
  }
  const chain: ProcedureDef = { meta: def.meta, middlewares: withNativeValidators(def) ?? def.middlewares };
  const fast = (async (opts: Options) => {
    const result = await callChain(0, chain, { ...opts, input: undefined });
    if (!result) {
      throw new TRPCError({
        code: "INTERNAL_SERVER_ERROR",
        message: "No result from middlewares - did you forget to `return next()`?",
      });
    }
    if (!result.ok) throw result.error;
    return result.data;
  }) as ServedProcedure;
  fast._def = def;
  fast.procedure = true;
  fast.meta = procedure.meta;
  return fast;
}

export function servedRouter<R extends AnyTRPCRouter>(router: R): R {
  const procedures: Record<string, ServedProcedure> = Object.create(null);
  for (const [path, procedure] of Object.entries(router._def.procedures as Record<string, ServedProcedure>)) {
    procedures[path] = withNativeSpreads(procedure);
  }
  const transformer = { input: wireTransformer, output: wireTransformer };
  return {
    ...router,
    _def: { ...router._def, procedures, _config: { ...router._def._config, transformer } },
  } as R;
}

/**
 * The coms router as the servers run it: the same procedures, middlewares,
 * error formatter and SSE options, with two cheaper internals shared by the
 * socket and HTTP transports. The transformer is the plain-JSON fast path
 * (same bytes on the wire). Each procedure's middleware chain is built once
 * into direct steps: tRPC's input and output validators and its resolver
 * call run inline, with the same parsers, merging and errors, and the app's
 * own middlewares are called as tRPC calls them. tRPC's generic caller
 * spreads the options twice per level through a transpiled helper and wraps
 * every level in a promise (profiled: ~14 of ~18 µs per call on a socket;
 * on the hub the chain was a third of what a request allocates). It relies
 * on the shape of tRPC 11's procedure definitions (pinned, and checked
 * byte for byte in test/hub-wire-compat.test.ts); a chain of another shape
 * keeps the generic path.
 */
import { type AnyTRPCRouter, getTRPCErrorFromUnknown, TRPCError } from "@trpc/server";
import { getParseFn, type Parser } from "@trpc/server/unstable-core-do-not-import";
import { wireTransformer } from "./wire-transformer.ts";

type Options = Record<string, unknown> & { ctx?: unknown; input?: unknown; getRawInput?: unknown };
type Middleware = (opts: Options) => Promise<MiddlewareResult>;
type MiddlewareResult = { ok: boolean; data?: unknown; error?: unknown } | undefined;
type ParseFn = (value: unknown) => unknown;
interface ProcedureDef {
  type?: unknown;
  meta?: unknown;
  middlewares: Middleware[];
  inputs?: Parser[];
  output?: Parser;
  resolver?: (opts: Options) => unknown;
}
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

/** A compiled link of a procedure's chain: what the rest of the chain answers for these options. */
type Step = (opts: Options) => Promise<MiddlewareResult>;

function failure(cause: unknown): MiddlewareResult {
  return { ok: false, error: getTRPCErrorFromUnknown(cause), marker: MIDDLEWARE_MARKER } as MiddlewareResult;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return !!value && !Array.isArray(value) && typeof value === "object";
}

/** A middleware of the app's own (`t.procedure.use`): called as tRPC calls it, its `next` never throws. */
function useStep(middleware: Middleware, meta: unknown, rest: Step): Step {
  return async (opts) => {
    try {
      return await middleware({
        ...opts,
        meta,
        next(nextOpts?: { ctx?: object; input?: unknown; getRawInput?: unknown }) {
          return rest({
            ...opts,
            ctx: nextOpts?.ctx ? { ...(opts.ctx as object), ...nextOpts.ctx } : opts.ctx,
            input: nextOpts && "input" in nextOpts ? nextOpts.input : opts.input,
            getRawInput: nextOpts?.getRawInput ?? opts.getRawInput,
          }).catch(failure);
        },
      });
    } catch (cause) {
      return failure(cause);
    }
  };
}

/** tRPC's input middleware, inline: parse the raw input, merge it into what earlier parsers gave. */
function inputStep(parse: ParseFn, rest: Step): Step {
  return async (opts) => {
    const raw = await (opts.getRawInput as () => Promise<unknown>)();
    let parsed: unknown;
    try {
      parsed = parse(raw);
      if (parsed instanceof Promise) parsed = await parsed;
    } catch (cause) {
      throw new TRPCError({ code: "BAD_REQUEST", cause });
    }
    const input = isObject(opts.input) && isObject(parsed) ? { ...opts.input, ...parsed } : parsed;
    return rest({ ...opts, input });
  };
}

/** tRPC's output middleware, inline. */
function outputStep(parse: ParseFn, rest: Step): Step {
  return async (opts) => {
    const result = await rest(opts);
    if (!result?.ok) return result;
    try {
      let data = parse(result.data);
      if (data instanceof Promise) data = await data;
      return { ...result, data };
    } catch (cause) {
      throw new TRPCError({ message: "Output validation failed", code: "INTERNAL_SERVER_ERROR", cause });
    }
  };
}

function resolveStep(resolver: (opts: Options) => unknown): Step {
  return async (opts) => {
    const data = await resolver(opts);
    return { marker: MIDDLEWARE_MARKER, ok: true, data, ctx: opts.ctx } as MiddlewareResult;
  };
}

/**
 * The chain built once: tRPC's input, output and resolver middlewares become
 * direct steps (same parsers, same errors, same merging), the app's own
 * middlewares keep their `next`. Undefined for a chain of any other shape.
 */
function compileChain(def: ProcedureDef): Step | undefined {
  const middlewares = def.middlewares;
  const wraps: Array<(rest: Step) => Step> = [];
  let inputs = 0;
  for (let i = 0; i < middlewares.length; i++) {
    const middleware = middlewares[i] as Middleware & { _type?: string };
    if (middleware._type === "input") {
      const parser = def.inputs?.[inputs++];
      if (parser === undefined) return undefined;
      const parse = getParseFn(parser);
      wraps.push((rest) => inputStep(parse, rest));
    } else if (middleware._type === "output") {
      if (def.output === undefined) return undefined;
      const parse = getParseFn(def.output);
      wraps.push((rest) => outputStep(parse, rest));
    } else if (i === middlewares.length - 1 && middleware.name === "resolveMiddleware" && def.resolver) {
      const resolver = def.resolver;
      wraps.push(() => resolveStep(resolver));
    } else if (middleware._type === undefined) {
      wraps.push((rest) => useStep(middleware, def.meta, rest));
    } else return undefined;
  }
  if (inputs !== (def.inputs?.length ?? 0)) return undefined;
  let chain: Step = async () => undefined;
  for (let i = wraps.length - 1; i >= 0; i--) chain = (wraps[i] as (rest: Step) => Step)(chain);
  return chain;
}

function withNativeSpreads(procedure: ServedProcedure): ServedProcedure {
  const def = procedure._def;
  if (!Array.isArray(def?.middlewares) || !def.middlewares.every((m) => typeof m === "function")) {
    return procedure;
  }
  const compiled = compileChain(def);
  const chain: Step = compiled ? (opts) => compiled(opts).catch(failure) : (opts) => callChain(0, def, opts);
  const fast = (async (opts: Options) => {
    const result = await chain({ ...opts, input: undefined });
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

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
    return failure(cause);
  }
}

/**
 * A compiled link of a procedure's chain: what the rest of the chain answers
 * for these options. Links run synchronously until something is really
 * asynchronous (a resolver waiting for the store), then chain on that one
 * promise, instead of a promise and a microtask per link; a link may throw,
 * and whoever called it turns the throw into a failed result, as tRPC does.
 */
type Step = (opts: Options) => MaybePromise<MiddlewareResult>;
type MaybePromise<T> = T | PromiseLike<T>;

function failure(cause: unknown): MiddlewareResult {
  return { ok: false, error: getTRPCErrorFromUnknown(cause), marker: MIDDLEWARE_MARKER } as MiddlewareResult;
}

function isThenable<T>(value: MaybePromise<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return !!value && !Array.isArray(value) && typeof value === "object";
}

/** The rest of the chain as tRPC's `next()` answers it: a promise that never rejects. */
function nextOf(rest: Step, opts: Options): Promise<MiddlewareResult> {
  let result: MaybePromise<MiddlewareResult>;
  try {
    result = rest(opts);
  } catch (cause) {
    return Promise.resolve(failure(cause));
  }
  return isThenable(result) ? Promise.resolve(result).then(undefined, failure) : Promise.resolve(result);
}

/** A middleware of the app's own (`t.procedure.use`): called as tRPC calls it, its `next` never throws. */
function useStep(middleware: Middleware, meta: unknown, rest: Step): Step {
  return (opts) =>
    middleware({
      ...opts,
      meta,
      next(nextOpts?: { ctx?: object; input?: unknown; getRawInput?: unknown }) {
        return nextOf(rest, {
          ...opts,
          ctx: nextOpts?.ctx ? { ...(opts.ctx as object), ...nextOpts.ctx } : opts.ctx,
          input: nextOpts && "input" in nextOpts ? nextOpts.input : opts.input,
          getRawInput: nextOpts?.getRawInput ?? opts.getRawInput,
        });
      },
    });
}

/**
 * tRPC's input middleware, inline: parse the raw input, merge it into what
 * earlier parsers gave. `opts` is always an object this chain made for this
 * call (never one a middleware holds), so the input is set on it in place.
 * A transport that already holds the input may pass a `getRawInput` that
 * answers without a promise.
 */
function inputStep(parse: ParseFn, rest: Step): Step {
  const withInput = (opts: Options, raw: unknown): MaybePromise<MiddlewareResult> => {
    let parsed: unknown;
    try {
      parsed = parse(raw);
    } catch (cause) {
      throw new TRPCError({ code: "BAD_REQUEST", cause });
    }
    if (parsed instanceof Promise) {
      return parsed.then(
        (value) => rest(merged(opts, value)),
        (cause) => {
          throw new TRPCError({ code: "BAD_REQUEST", cause });
        },
      );
    }
    return rest(merged(opts, parsed));
  };
  return (opts) => {
    const raw = (opts.getRawInput as () => unknown)();
    return isThenable(raw) ? raw.then((value) => withInput(opts, value)) : withInput(opts, raw);
  };
}

function merged(opts: Options, parsed: unknown): Options {
  opts.input = isObject(opts.input) && isObject(parsed) ? { ...opts.input, ...parsed } : parsed;
  return opts;
}

/** The error tRPC's output middleware gives for an output its parser refused. */
function invalid(cause: unknown): TRPCError {
  return new TRPCError({ message: "Output validation failed", code: "INTERNAL_SERVER_ERROR", cause });
}

/** tRPC's output check on a successful result (same error as its output middleware). */
function checkedOutput(parse: ParseFn, result: MiddlewareResult): MaybePromise<MiddlewareResult> {
  if (!result?.ok) return result;
  let data: unknown;
  try {
    data = parse(result.data);
  } catch (cause) {
    throw invalid(cause);
  }
  if (data instanceof Promise) {
    return data.then(
      (value) => ({ ...result, data: value }),
      (cause) => {
        throw invalid(cause);
      },
    );
  }
  return { ...result, data };
}

/** tRPC's output middleware, inline. */
function outputStep(parse: ParseFn, rest: Step): Step {
  return (opts) => {
    const result = rest(opts);
    return isThenable(result)
      ? result.then((value) => checkedOutput(parse, value))
      : checkedOutput(parse, result);
  };
}

/** The resolver's answer as a middleware result, output-checked when `parse` is given (the output step fused in). */
function resolveStep(resolver: (opts: Options) => unknown, parse?: ParseFn): Step {
  const resultOf = (data: unknown, ctx: unknown): MaybePromise<MiddlewareResult> => {
    const result = { marker: MIDDLEWARE_MARKER, ok: true, data, ctx } as MiddlewareResult;
    return parse ? checkedOutput(parse, result) : result;
  };
  return (opts) => {
    const data = resolver(opts);
    return isThenable(data) ? data.then((value) => resultOf(value, opts.ctx)) : resultOf(data, opts.ctx);
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
    const last = i === middlewares.length - 1;
    if (middleware._type === "input") {
      const parser = def.inputs?.[inputs++];
      if (parser === undefined) return undefined;
      const parse = getParseFn(parser);
      wraps.push((rest) => inputStep(parse, rest));
    } else if (middleware._type === "output") {
      if (def.output === undefined) return undefined;
      const parse = getParseFn(def.output);
      const resolver = def.resolver;
      const next = middlewares[i + 1];
      if (resolver && i + 1 === middlewares.length - 1 && next?.name === "resolveMiddleware") {
        // Output check right before the resolver: one step, one continuation.
        wraps.push(() => resolveStep(resolver, parse));
        i++;
      } else wraps.push((rest) => outputStep(parse, rest));
    } else if (last && middleware.name === "resolveMiddleware" && def.resolver) {
      const resolver = def.resolver;
      wraps.push(() => resolveStep(resolver));
    } else if (middleware._type === undefined) {
      wraps.push((rest) => useStep(middleware, def.meta, rest));
    } else return undefined;
  }
  if (inputs !== (def.inputs?.length ?? 0)) return undefined;
  let chain: Step = () => undefined;
  for (let i = wraps.length - 1; i >= 0; i--) chain = (wraps[i] as (rest: Step) => Step)(chain);
  return chain;
}

/** A finished chain's result as the procedure answers it: its data, or the error it failed with. */
function dataOf(result: MiddlewareResult): unknown {
  if (!result) {
    throw new TRPCError({
      code: "INTERNAL_SERVER_ERROR",
      message: "No result from middlewares - did you forget to `return next()`?",
    });
  }
  if (!result.ok) throw result.error;
  return result.data;
}

function servedProcedure(procedure: ServedProcedure): ServedProcedure {
  const def = procedure._def;
  if (!Array.isArray(def?.middlewares) || !def.middlewares.every((m) => typeof m === "function")) {
    return procedure;
  }
  const compiled = compileChain(def);
  let fast: ServedProcedure;
  if (compiled) {
    fast = ((opts: Options) => {
      let result: MaybePromise<MiddlewareResult>;
      try {
        result = compiled({ ...opts, input: undefined });
      } catch (cause) {
        result = failure(cause);
      }
      if (isThenable(result)) return Promise.resolve(result).then(dataOf, (cause) => dataOf(failure(cause)));
      try {
        return Promise.resolve(dataOf(result));
      } catch (error) {
        return Promise.reject(error);
      }
    }) as ServedProcedure;
  } else {
    fast = (async (opts: Options) =>
      dataOf(await callChain(0, def, { ...opts, input: undefined }))) as ServedProcedure;
  }
  fast._def = def;
  fast.procedure = true;
  fast.meta = procedure.meta;
  return fast;
}

export function servedRouter<R extends AnyTRPCRouter>(router: R): R {
  const procedures: Record<string, ServedProcedure> = Object.create(null);
  for (const [path, procedure] of Object.entries(router._def.procedures as Record<string, ServedProcedure>)) {
    procedures[path] = servedProcedure(procedure);
  }
  const transformer = { input: wireTransformer, output: wireTransformer };
  return {
    ...router,
    _def: { ...router._def, procedures, _config: { ...router._def._config, transformer } },
  } as R;
}

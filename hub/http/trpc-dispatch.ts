/**
 * tRPC's HTTP protocol, server side, for the hub: one call or a batch
 * (`?batch=1`, paths joined by commas, inputs keyed by index), GET for
 * queries and subscriptions, POST for mutations, answers and errors in the
 * shapes and with the status codes tRPC's own resolver gives (checked byte for
 * byte against it in test/hub-wire-compat.test.ts). Procedures run through the
 * served router (input and output parsers, middlewares, error formatter).
 * Runtime-neutral: the Node and Bun listeners feed it and write what it answers.
 *
 * Not served (the hub's clients never use them): httpBatchStreamLink's
 * `trpc-accept: application/jsonl`, form-data and octet-stream inputs, and
 * method override; each gets a clear 4xx.
 */
import { type AnyTRPCRouter, getTRPCErrorFromUnknown, TRPCError } from "@trpc/server";
import type { ComsContext } from "../../contract/router.ts";
import type { ServedProcedure } from "../../lib/served-router.ts";
import { wireJson } from "../../lib/wire-transformer.ts";
import { type CallType, errorItem, statusOf } from "./trpc-errors.ts";

export interface TrpcRequest {
  method: string;
  /** The procedure part of the path (after `/trpc/`), still URL-encoded. */
  path: string;
  query: URLSearchParams | null;
  header(name: string): string | null | undefined;
  /** The request body ("" for none). */
  body: string;
  ctx: ComsContext;
}

export type TrpcAnswer =
  | { kind: "json"; status: number; body: string; allow?: string; contentType?: string }
  | { kind: "empty"; status: number; allow?: string }
  | SseAnswer;

export interface SseAnswer {
  kind: "sse";
  /** The id the client resumes after (header or query), for restore-id events. */
  lastEventId: string | null;
  /** What the procedure returned: a push feed or an async iterable. */
  source: unknown;
  /** Set instead of `source` when the subscription failed to start: the serialized error event data. */
  failure?: string;
  /** Aborting it ends the procedure's stream (client gone, stream cut). */
  abort: AbortController;
  /** The serialized error event data for an error raised while streaming. */
  formatError(cause: unknown): string;
}

const ACCEPTED: Record<string, string> = { query: "GET", subscription: "GET", mutation: "POST" };

interface Call {
  index: number;
  path: string;
  procedure: ServedProcedure | undefined;
}

export function lastEventIdOf(req: Pick<TrpcRequest, "header" | "query">): string | null {
  return (
    req.header("last-event-id") ?? req.query?.get("lastEventId") ?? req.query?.get("Last-Event-Id") ?? null
  );
}

function parseFailure(cause: unknown): TRPCError {
  if (cause instanceof TRPCError) return cause;
  return new TRPCError({
    code: "BAD_REQUEST",
    message: cause instanceof Error ? cause.message : "Invalid input",
    cause,
  });
}

/**
 * The answer to one request; synchronous when no procedure ran (a refusal,
 * OPTIONS, HEAD), otherwise the one promise of its procedures.
 */
export function dispatch(router: AnyTRPCRouter, req: TrpcRequest): TrpcAnswer | Promise<TrpcAnswer> {
  if (req.method === "HEAD") return { kind: "empty", status: 204 };
  const transformer = router._def._config.transformer;
  const procedures = router._def.procedures as Record<string, ServedProcedure>;
  const batch = req.query?.get("batch") === "1";
  let calls: Call[];
  let type: CallType = "unknown";
  try {
    let path: string;
    try {
      path = decodeURIComponent(req.path);
    } catch (cause) {
      throw new TRPCError({
        code: "BAD_REQUEST",
        message: `Invalid URL-encoding in path "${req.path}"`,
        cause,
      });
    }
    if (req.method !== "GET" && req.method !== "POST") return otherMethod(router, req, path, batch);
    checkContentType(req);
    if (batch && req.header("trpc-accept") === "application/jsonl") {
      throw new TRPCError({
        code: "BAD_REQUEST",
        message: "streamed batches are not served here: use httpBatchLink",
      });
    }
    const paths = batch ? path.split(",") : [path];
    calls = paths.map((p, index) => ({
      index,
      path: p,
      procedure: Object.hasOwn(procedures, p) ? procedures[p] : undefined,
    }));
    if (!batch) type = (calls[0]?.procedure?._def.type as CallType | undefined) ?? "unknown";
    else {
      const types = new Set<string>();
      for (const call of calls) if (call.procedure) types.add(call.procedure._def.type as string);
      if (types.size > 1) {
        throw new TRPCError({
          code: "BAD_REQUEST",
          message: `Cannot mix procedure types in call: ${[...types].join(", ")}`,
        });
      }
      type = (types.values().next().value as CallType | undefined) ?? "unknown";
    }
  } catch (cause) {
    // A request-level failure: one error object, even for a batch.
    const error = getTRPCErrorFromUnknown(cause);
    const item = errorItem(router, {
      error,
      type: "unknown",
      path: undefined,
      input: undefined,
      ctx: undefined,
    });
    // tRPC answers these before it sets a content type, so they go out as text (same bytes, same header).
    return {
      kind: "json",
      status: statusOf([item], [error]),
      body: item.json,
      contentType: "text/plain;charset=UTF-8",
    };
  }

  // Inputs are parsed once, when the first procedure asks for its own (as tRPC does).
  let inputs: Record<number, unknown> | undefined;
  let inputError: TRPCError | undefined;
  const readInputs = (): Record<number, unknown> => {
    if (inputs) return inputs;
    if (inputError) throw inputError;
    try {
      const text = req.method === "GET" ? (req.query?.get("input") ?? "") : req.body;
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      const result: Record<number, unknown> = Object.create(null);
      if (parsed !== undefined) {
        if (!batch) result[0] = transformer.input.deserialize(parsed);
        else {
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
            throw new TRPCError({
              code: "BAD_REQUEST",
              message: '"input" needs to be an object when doing a batch call',
            });
          }
          for (const call of calls) {
            const raw = (parsed as Record<number, unknown>)[call.index];
            if (raw !== undefined) result[call.index] = transformer.input.deserialize(raw);
          }
        }
      }
      inputs = result;
      return result;
    } catch (cause) {
      inputError = parseFailure(cause);
      throw inputError;
    }
  };
  const inputOf = (index: number) => inputs?.[index];

  if (!batch && type === "subscription") return subscribe(router, req, calls[0] as Call, readInputs, inputOf);

  if (!batch) {
    // One call, the common case: answered straight from its procedure's promise when it succeeds.
    const call = calls[0] as Call;
    const started = run(req, call, false, readInputs);
    if (!(started instanceof Promise)) return answerOf(router, req, calls, [started], false, inputOf);
    return started.then(
      (data) => ({ kind: "json", status: 200, body: `{"result":{"data":${wireJson(data)}}}` }) as TrpcAnswer,
      (cause) => answerOf(router, req, calls, [refused(cause)], false, inputOf),
    );
  }
  return Promise.all(
    calls.map((call) => {
      const started = run(req, call, batch, readInputs);
      return started instanceof Promise ? started.then(succeeded, refused) : started;
    }),
  ).then((results) => answerOf(router, req, calls, results, batch, inputOf));
}

const succeeded = (data: unknown): CallResult => ({ ok: true, data });
const refused = (cause: unknown): CallResult => ({ ok: false, error: getTRPCErrorFromUnknown(cause) });

/** The body and status for the calls' results, in tRPC's shapes (errors formatted by the router). */
function answerOf(
  router: AnyTRPCRouter,
  req: TrpcRequest,
  calls: Call[],
  results: CallResult[],
  batch: boolean,
  inputOf: (index: number) => unknown,
): TrpcAnswer {
  let allowHeader: string | undefined;
  const items: Array<{ json: string; shape: unknown } | undefined> = [];
  const errors: Array<TRPCError | undefined> = [];
  let failed = false;
  for (let i = 0; i < results.length; i++) {
    const result = results[i] as CallResult;
    if (result.ok) {
      items.push(undefined);
      errors.push(undefined);
      continue;
    }
    failed = true;
    const call = calls[i] as Call;
    if (result.allow) allowHeader = result.allow;
    errors.push(result.error);
    items.push(
      errorItem(router, {
        error: result.error,
        type: (call.procedure?._def.type as CallType | undefined) ?? "unknown",
        path: call.path,
        input: inputOf(call.index),
        ctx: req.ctx,
      }),
    );
  }
  const text = (i: number) => {
    const item = items[i];
    if (item) return item.json;
    return `{"result":{"data":${wireJson((results[i] as { data: unknown }).data)}}}`;
  };
  let body: string;
  if (!batch) body = text(0);
  else {
    body = "[";
    for (let i = 0; i < results.length; i++) body += i === 0 ? text(i) : `,${text(i)}`;
    body += "]";
  }
  const status = failed ? statusOf(items, errors) : 200;
  return { kind: "json", status, body, ...(allowHeader ? { allow: allowHeader } : {}) };
}

type CallResult = { ok: true; data: unknown } | { ok: false; error: TRPCError; allow?: string };

/** A call's procedure started (its promise), or why it was refused before it ran. */
function run(
  req: TrpcRequest,
  call: Call,
  batch: boolean,
  readInputs: () => Record<number, unknown>,
): CallResult | Promise<unknown> {
  const procedure = call.procedure;
  if (!procedure) {
    return {
      ok: false,
      error: new TRPCError({ code: "NOT_FOUND", message: `No procedure found on path "${call.path}"` }),
    };
  }
  const type = procedure._def.type as string;
  if (ACCEPTED[type] !== req.method) {
    return {
      ok: false,
      allow: ACCEPTED[type] as string,
      error: new TRPCError({
        code: "METHOD_NOT_SUPPORTED",
        message: `Unsupported ${req.method}-request to ${type} procedure at path "${call.path}"`,
      }),
    };
  }
  if (type === "subscription" && batch) {
    return {
      ok: false,
      error: new TRPCError({ code: "BAD_REQUEST", message: "Cannot batch subscription calls" }),
    };
  }
  // The served router's procedures never throw; the input is read without a promise (it is already here).
  return procedure({
    path: call.path,
    getRawInput: () => readInputs()[call.index],
    ctx: req.ctx,
    type,
    signal: undefined,
    batchIndex: call.index,
  });
}

async function subscribe(
  router: AnyTRPCRouter,
  req: TrpcRequest,
  call: Call,
  readInputs: () => Record<number, unknown>,
  inputOf: (index: number) => unknown,
): Promise<SseAnswer> {
  const lastEventId = lastEventIdOf(req);
  const abort = new AbortController();
  const serialize = router._def._config.transformer.output.serialize;
  const formatError = (cause: unknown) => {
    const error = getTRPCErrorFromUnknown(cause);
    const { shape } = errorItem(router, {
      error,
      type: "subscription",
      path: call.path,
      input: inputOf(call.index),
      ctx: req.ctx,
    });
    return JSON.stringify(serialize(shape));
  };
  const answer: SseAnswer = { kind: "sse", lastEventId, source: undefined, abort, formatError };
  const procedure = call.procedure as ServedProcedure;
  try {
    if (req.method !== "GET") {
      throw new TRPCError({
        code: "METHOD_NOT_SUPPORTED",
        message: `Unsupported ${req.method}-request to subscription procedure at path "${call.path}"`,
      });
    }
    answer.source = await procedure({
      path: call.path,
      getRawInput: async () => {
        let input = readInputs()[call.index];
        // A reconnecting EventSource sends the id in a header; the procedure reads it from its input.
        if (lastEventId) {
          if (typeof input === "object" && input !== null) input = { ...input, lastEventId };
          else input ??= { lastEventId };
        }
        return input;
      },
      ctx: req.ctx,
      type: "subscription",
      signal: abort.signal,
      batchIndex: 0,
    });
    const source = answer.source as { [Symbol.asyncIterator]?: unknown } | null;
    if (typeof source !== "object" || source === null || typeof source[Symbol.asyncIterator] !== "function") {
      throw new TRPCError({
        code: "INTERNAL_SERVER_ERROR",
        message: `Subscription ${call.path} did not return an observable or a AsyncGenerator`,
      });
    }
  } catch (cause) {
    answer.source = undefined;
    answer.failure = formatError(cause);
  }
  return answer;
}

/**
 * Any method but GET, POST and HEAD: OPTIONS is told what the path answers
 * (204 + Allow), everything else gets a 405 with the same Allow, in tRPC's
 * error shape. Known procedures allow their own method; unknown paths both.
 */
function otherMethod(router: AnyTRPCRouter, req: TrpcRequest, path: string, batch: boolean): TrpcAnswer {
  const procedures = router._def.procedures as Record<string, ServedProcedure>;
  const allowed = new Set<string>();
  for (const p of batch ? path.split(",") : [path]) {
    const type = Object.hasOwn(procedures, p) ? (procedures[p]?._def.type as string) : undefined;
    if (type && ACCEPTED[type]) allowed.add(ACCEPTED[type] as string);
    else allowed.add("GET").add("POST");
  }
  if (allowed.has("GET")) allowed.add("HEAD");
  const allow = [...allowed].join(", ");
  if (req.method === "OPTIONS") return { kind: "empty", status: 204, allow: `${allow}, OPTIONS` };
  const error = new TRPCError({
    code: "METHOD_NOT_SUPPORTED",
    message: `${req.method} is not served at /trpc/${path}: use ${allow}`,
  });
  const item = errorItem(router, { error, type: "unknown", path, input: undefined, ctx: req.ctx });
  return { kind: "json", status: 405, body: item.json, allow };
}

/** JSON bodies only; a GET is read as JSON whatever it says (as tRPC does). */
function checkContentType(req: TrpcRequest): void {
  if (req.method === "GET") return;
  const raw = req.header("content-type");
  if (raw?.toLowerCase().split(";", 1)[0]?.trim() === "application/json") return;
  throw new TRPCError({
    code: "UNSUPPORTED_MEDIA_TYPE",
    message: raw ? `Unsupported content-type "${raw}` : "Missing content-type header",
  });
}

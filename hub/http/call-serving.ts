/**
 * How the hub answers one call, whichever listener read it: the front door
 * (routes, auth, limits), then the procedure through tRPC's protocol. The
 * Node and Bun listeners both serve agents' plain requests this way
 * (`plain`, for the reader in h1-connection.ts); Node also serves the calls
 * node:http parsed with it.
 */
import { comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { wireJson } from "../../lib/wire-transformer.ts";
import { type Entry, enter } from "./front-door.ts";
import type { H1Options } from "./h1-connection.ts";
import { H1Call, type HubCall } from "./hub-calls.ts";
import { DEFAULT_MAX_STREAM_BUFFER_BYTES, type ServeOptions } from "./routes.ts";
import { SseStreams } from "./sse-writer.ts";
import { dispatch, type TrpcAnswer } from "./trpc-dispatch.ts";

/** The contract's router, compiled once for every listener of this process. */
export const hubRouter = servedRouter(comsRouter);
const PING_MS = comsRouter._def._config.sse?.ping?.intervalMs ?? 15_000;

/** node:http's deadlines, used for every kind of connection. */
export const HEADERS_TIMEOUT_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 30_000;

export interface CallServing {
  streams: SseStreams;
  /** The front door; null when the call goes on to its procedure (`serve`). */
  enterCall(call: HubCall): Entry | null;
  /** Send the front door's own answer (a route, a refusal), which may still be on its way. */
  answerEntry(call: HubCall, entry: Entry): void;
  /** Run the call's procedure and send its answer. */
  serve(call: HubCall): void;
  /** The plain reader's options: every route but those the runtime's own server answers (the operator routes, /mcp). */
  plain: H1Options;
}

export function callServing(opts: ServeOptions): CallServing {
  const servedElsewhere = (path: string): boolean => !!(opts.dashboard?.owns(path) || opts.mcp?.owns(path));
  const streams = new SseStreams({
    pingMs: opts.pingMs ?? PING_MS,
    maxBufferedBytes: opts.maxStreamBufferBytes ?? DEFAULT_MAX_STREAM_BUFFER_BYTES,
    json: wireJson,
  });

  const answerEntry = (call: HubCall, entry: Entry): void => {
    if (entry.kind !== "answer") return;
    const { answer } = entry;
    if (!(answer instanceof Promise)) call.answer(answer);
    else
      answer.then(
        (a) => call.answer(a),
        () => call.answer({ status: 500, headers: {}, body: "" }),
      );
  };

  const failed = (call: HubCall, error: Error) =>
    call.answer({ status: 500, headers: {}, body: JSON.stringify({ error: error.message }) });

  const serve = (call: HubCall) => {
    let result: TrpcAnswer | Promise<TrpcAnswer>;
    try {
      result = dispatch(hubRouter, call.trpcRequest());
    } catch (error) {
      failed(call, error as Error);
      return;
    }
    if (result instanceof Promise)
      result.then(
        (done) => call.send(done),
        (error: Error) => failed(call, error),
      );
    else call.send(result);
  };

  const enterCall = (call: HubCall): Entry | null => {
    const entry = enter(call, opts, call.remote, call.contentLength());
    if (entry.kind === "answer") return entry;
    call.ctx = { backend: opts.backend, caller: entry.caller, admin: opts.admin };
    call.procedurePath = entry.procedurePath;
    return null;
  };

  const plain: H1Options = {
    takes: ({ target }) => {
      const q = target.indexOf("?");
      return !servedElsewhere(q === -1 ? target : target.slice(0, q));
    },
    serve: (head, body, conn) => {
      const call = new H1Call(head, conn, streams);
      const refused = enterCall(call);
      if (refused) answerEntry(call, refused);
      else {
        call.body = body ?? "";
        serve(call);
      }
    },
    maxBodyBytes: opts.maxBodyBytes,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  };

  return { streams, enterCall, answerEntry, serve, plain };
}

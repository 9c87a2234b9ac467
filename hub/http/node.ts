/**
 * The hub over node:http (or node:https): the front door, then tRPC's HTTP
 * protocol served directly (trpc-dispatch.ts, sse-writer.ts) instead of
 * through tRPC's standalone adapter, which turns every request into a fetch
 * Request and every answer into web streams.
 */
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { type ComsContext, comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { wireJson } from "../../lib/wire-transformer.ts";
import { serveDashboardNode } from "./dashboard-mount.ts";
import { type Entry, enter, splitTarget, tooLarge } from "./front-door.ts";
import { serveMcpNode } from "./mcp-node.ts";
import { collectBody } from "./node-body.ts";
import {
  DEFAULT_MAX_STREAM_BUFFER_BYTES,
  type RouteAnswer,
  type RouteRequest,
  type ServedHub,
  type ServeOptions,
} from "./routes.ts";
import { SSE_HEADERS, SseStreams } from "./sse-writer.ts";
import { dispatch, type TrpcAnswer, type TrpcRequest } from "./trpc-dispatch.ts";

/**
 * A header's value (`name` in lower case) read from node's raw list (name,
 * value, name, value…) instead of `req.headers`, which builds an object of
 * every header on first use. A header sent more than once is left to
 * `req.headers`, so repeated headers are joined or dropped exactly as node does.
 */
function rawHeader(req: IncomingMessage, name: string): string | undefined {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i] as string;
    if (key.length !== name.length || key.toLowerCase() !== name) continue;
    if (value !== undefined) {
      const joined = req.headers[name];
      return Array.isArray(joined) ? joined[0] : joined;
    }
    value = raw[i + 1];
  }
  return value;
}

const hubRouter = servedRouter(comsRouter);
const NODE_SSE_HEADERS = { ...SSE_HEADERS, connection: "close" };
const PING_MS = comsRouter._def._config.sse?.ping?.intervalMs ?? 15_000;

function answer(res: ServerResponse, { status, headers, body }: RouteAnswer): void {
  res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Write the front door's own answer (a route, a refusal), which may still be on its way. */
function answerEntry(res: ServerResponse, entry: Entry): void {
  if (entry.kind !== "answer") return;
  void Promise.resolve(entry.answer).then(
    (a) => answer(res, a),
    () => answer(res, { status: 500, headers: {}, body: "" }),
  );
}

export function serveNode(opts: ServeOptions): Promise<ServedHub> {
  const streams = new SseStreams({
    pingMs: opts.pingMs ?? PING_MS,
    maxBufferedBytes: opts.maxStreamBufferBytes ?? DEFAULT_MAX_STREAM_BUFFER_BYTES,
    json: wireJson,
  });

  const write = (res: ServerResponse, result: TrpcAnswer) => {
    if (result.kind === "json") {
      const headers: Record<string, string | number> = {
        vary: "trpc-accept, accept",
        "content-type": result.contentType ?? "application/json",
        "content-length": Buffer.byteLength(result.body),
      };
      if (result.allow) headers.allow = result.allow;
      res.writeHead(result.status, headers);
      res.end(result.body);
    } else if (result.kind === "empty") {
      res.writeHead(result.status, result.allow ? { allow: result.allow } : {});
      res.end();
    } else {
      // Event frames go straight to the socket, one write each, in a body that ends when the connection
      // does: through `res.write` every frame would be three chunked-encoding pieces, corked and flushed
      // a tick later as one writev. A stream is the last thing its connection carries either way.
      res.useChunkedEncodingByDefault = false;
      res.writeHead(200, NODE_SSE_HEADERS);
      res.flushHeaders();
      const socket = res.socket;
      if (!socket) {
        result.abort.abort();
        return;
      }
      const stop = streams.start(
        {
          write: (chunk) => void socket.write(chunk),
          buffered: () => socket.writableLength,
          end: () => res.end(),
          cut: () => res.destroy(),
          onDrain: (fn) => socket.once("drain", fn),
        },
        result,
      );
      res.once("close", stop);
    }
  };

  const handle: RequestListener = (req, res) => {
    const call = new NodeCall(req, res);
    const { method, path } = call;
    if (opts.dashboard?.owns(path)) {
      void serveDashboardNode(opts.dashboard, req, res, path);
      return;
    }
    if (opts.mcp?.owns(path)) {
      void serveMcpNode(opts.mcp, req, res, opts.maxBodyBytes);
      return;
    }
    const entry = enter(call, opts, req.socket.remoteAddress, Number(call.header("content-length") ?? 0));
    if (entry.kind === "answer") {
      req.resume();
      answerEntry(res, entry);
      return;
    }
    call.ctx = { backend: opts.backend, caller: entry.caller, admin: opts.admin };
    call.procedurePath = entry.procedurePath;
    if (method === "GET" || method === "HEAD") {
      req.resume();
      serve(call);
      return;
    }
    call.readBody(opts.maxBodyBytes);
  };

  const failed = (res: ServerResponse, error: Error) =>
    answer(res, { status: 500, headers: {}, body: JSON.stringify({ error: error.message }) });

  const serve = (call: NodeCall) => {
    const { res } = call;
    let result: TrpcAnswer | Promise<TrpcAnswer>;
    try {
      result = dispatch(hubRouter, call.trpcRequest());
    } catch (error) {
      failed(res, error as Error);
      return;
    }
    if (result instanceof Promise)
      result.then(
        (done) => write(res, done),
        (error: Error) => failed(res, error),
      );
    else write(res, result);
  };

  /**
   * One request to the hub on node:http: its method, target and headers as
   * the front door and dispatch read them, and its body as it arrives. One
   * object per request instead of a closure per field and a promise for the
   * body; headers are looked up in the raw list rather than through
   * `req.headers`, which builds an object of every header on first use.
   */
  class NodeCall implements RouteRequest {
    readonly method: string;
    readonly path: string;
    readonly query: URLSearchParams | null;
    ctx: ComsContext | undefined;
    procedurePath = "";
    private body = "";

    readonly req: IncomingMessage;
    readonly res: ServerResponse;

    constructor(req: IncomingMessage, res: ServerResponse) {
      this.req = req;
      this.res = res;
      this.method = req.method ?? "GET";
      const { path, query } = splitTarget(req.url ?? "/");
      this.path = path;
      this.query = query;
    }

    /** Handed around unbound (auth, dispatch), hence a property. */
    readonly header = (name: string): string | undefined => rawHeader(this.req, name);

    trpcRequest(): TrpcRequest {
      return {
        method: this.method,
        path: this.procedurePath,
        query: this.query,
        header: this.header,
        body: this.body,
        ctx: this.ctx as ComsContext,
      };
    }

    readBody(limit: number): void {
      collectBody(
        this.req,
        limit,
        (body) => {
          if (body === null) answerEntry(this.res, tooLarge(this, opts));
          else {
            this.body = body;
            serve(this);
          }
        },
        () => this.res.destroy(),
      );
    }
  }

  return listenNode(opts, handle, () => streams.closeAll());
}

/**
 * Listen on node:http or node:https with the hub's deadlines; `close` runs
 * `beforeClose`, then drops every open connection (streams included).
 */
export function listenNode(
  opts: Pick<ServeOptions, "host" | "port" | "tls">,
  handle: RequestListener,
  beforeClose: () => void = () => {},
): Promise<ServedHub> {
  const server = opts.tls ? createHttpsServer({ ...opts.tls }, handle) : createServer(handle);
  // SSE streams stay open indefinitely; only the request head has a deadline.
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 30_000;
  // node:http hands CONNECT to this event and, without a listener, drops the socket unanswered.
  server.on("connect", (_req, socket) => {
    socket.end(
      "HTTP/1.1 405 Method Not Allowed\r\nallow: GET, POST, HEAD, OPTIONS\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            beforeClose();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

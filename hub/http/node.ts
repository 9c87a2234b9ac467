/**
 * The hub over node:http (or node:https): the front door, then tRPC's HTTP
 * protocol served directly (trpc-dispatch.ts, sse-writer.ts) instead of
 * through tRPC's standalone adapter, which turns every request into a fetch
 * Request and every answer into web streams.
 */
import { createServer, type RequestListener, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { wireJson } from "../../lib/wire-transformer.ts";
import { serveDashboardNode } from "./dashboard-mount.ts";
import { enter, splitTarget, tooLarge } from "./front-door.ts";
import { readBody, serveMcpNode } from "./mcp-node.ts";
import {
  DEFAULT_MAX_STREAM_BUFFER_BYTES,
  type RouteAnswer,
  type ServedHub,
  type ServeOptions,
} from "./routes.ts";
import { SSE_HEADERS, SseStreams } from "./sse-writer.ts";
import { dispatch, type TrpcAnswer } from "./trpc-dispatch.ts";

const hubRouter = servedRouter(comsRouter);
const PING_MS = comsRouter._def._config.sse?.ping?.intervalMs ?? 15_000;

function answer(res: ServerResponse, { status, headers, body }: RouteAnswer): void {
  res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
  res.end(body);
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
      res.writeHead(200, SSE_HEADERS);
      const stop = streams.start(
        {
          write: (chunk) => void res.write(chunk),
          buffered: () => res.writableLength,
          end: () => res.end(),
          cut: () => res.destroy(),
          onDrain: (fn) => res.once("drain", fn),
        },
        result,
      );
      res.once("close", stop);
    }
  };

  const handle: RequestListener = (req, res) => {
    const method = req.method ?? "GET";
    const { path, query } = splitTarget(req.url ?? "/");
    if (opts.dashboard?.owns(path)) {
      void serveDashboardNode(opts.dashboard, req, res, path);
      return;
    }
    if (opts.mcp?.owns(path)) {
      void serveMcpNode(opts.mcp, req, res, opts.maxBodyBytes);
      return;
    }
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const request = { method, path, query, header };
    const entry = enter(request, opts, req.socket.remoteAddress, Number(req.headers["content-length"] ?? 0));
    if (entry.kind === "answer") {
      req.resume();
      void Promise.resolve(entry.answer).then(
        (a) => answer(res, a),
        () => answer(res, { status: 500, headers: {}, body: "" }),
      );
      return;
    }
    const ctx = { backend: opts.backend, caller: entry.caller, admin: opts.admin };
    const serve = (body: string) =>
      dispatch(hubRouter, { method, path: entry.procedurePath, query, header, body, ctx }).then(
        (result) => write(res, result),
        (error: Error) =>
          answer(res, { status: 500, headers: {}, body: JSON.stringify({ error: error.message }) }),
      );
    if (method === "GET" || method === "HEAD") {
      req.resume();
      void serve("");
      return;
    }
    void readBody(req, opts.maxBodyBytes).then(
      (body) => {
        if (body === null) {
          const refused = tooLarge(request, opts);
          if (refused.kind === "answer") void Promise.resolve(refused.answer).then((a) => answer(res, a));
          return;
        }
        return serve(body);
      },
      () => res.destroy(),
    );
  };

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

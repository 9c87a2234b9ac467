/**
 * The hub on Node: the front door, then tRPC's HTTP protocol served directly
 * (trpc-dispatch.ts, sse-writer.ts) instead of through tRPC's standalone
 * adapter, which turns every request into a fetch Request and every answer
 * into web streams. Agents' plain requests are read straight off the socket
 * (h1-connection.ts); node:http (or node:https) takes the operator routes,
 * /mcp, and any connection whose request is out of the ordinary.
 */
import { createServer, type RequestListener } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import {
  callServing,
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
} from "./call-serving.ts";
import { serveDashboardNode } from "./dashboard-mount.ts";
import { tooLarge } from "./front-door.ts";
import { H1Connections } from "./h1-connection.ts";
import { NodeCall } from "./hub-calls.ts";
import { serveMcpNode } from "./mcp-node.ts";
import { collectBody } from "./node-body.ts";
import { acceptNode } from "./node-h1.ts";
import type { ServedHub, ServeOptions } from "./routes.ts";

export function serveNode(opts: ServeOptions): Promise<ServedHub> {
  const { streams, enterCall, answerEntry, serve, plain } = callServing(opts);
  let h1: H1Connections | undefined;

  // Connections handed to node:http: the operator routes, /mcp, and anything unusual.
  const handle: RequestListener = (req, res) => {
    const call = new NodeCall(req, res, streams);
    const { path } = call;
    if (opts.dashboard?.owns(path)) {
      void serveDashboardNode(opts.dashboard, req, res, path);
      return;
    }
    if (opts.mcp?.owns(path)) {
      void serveMcpNode(opts.mcp, req, res, opts.maxBodyBytes);
      return;
    }
    const refused = enterCall(call);
    if (refused) {
      req.resume();
      answerEntry(call, refused);
      return;
    }
    if (call.method === "GET" || call.method === "HEAD") {
      req.resume();
      serve(call);
      return;
    }
    collectBody(
      req,
      opts.maxBodyBytes,
      (body) => {
        if (body === null) answerEntry(call, tooLarge(call, opts));
        else {
          call.body = body;
          serve(call);
        }
      },
      () => res.destroy(),
    );
  };

  return listenNode(
    opts,
    handle,
    () => {
      streams.closeAll();
      h1?.closeAll();
    },
    (toNode) => {
      h1 = new H1Connections(plain);
      return acceptNode(h1, (socket, read) => {
        toNode(socket);
        // node:http's parser starts from the request the plain reader stopped at.
        if (read.length > 0) socket.emit("data", read);
      });
    },
  );
}

/**
 * Listen on node:http or node:https with the hub's deadlines; `close` runs
 * `beforeClose`, then drops every open connection (streams included).
 */
export function listenNode(
  opts: Pick<ServeOptions, "host" | "port" | "tls">,
  handle: RequestListener,
  beforeClose: () => void = () => {},
  intercept?: (toNode: (socket: Socket) => void) => (socket: Socket) => void,
): Promise<ServedHub> {
  const server = opts.tls ? createHttpsServer({ ...opts.tls }, handle) : createServer(handle);
  // SSE streams stay open indefinitely; only the request head has a deadline.
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  if (intercept) {
    // New connections go to `intercept` first; node:http's own listener takes those handed back to it.
    const event = opts.tls ? "secureConnection" : "connection";
    const [nodeConnection] = server.listeners(event) as ((socket: Socket) => void)[];
    if (!nodeConnection) throw new Error(`node:http has no ${event} listener`);
    server.removeListener(event, nodeConnection);
    server.on(
      event,
      intercept((socket) => nodeConnection.call(server, socket)),
    );
  }
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

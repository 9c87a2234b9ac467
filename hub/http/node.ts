/** The hub over node:http (or node:https): tRPC's standalone handler behind the shared auth check. */
import { createServer, type IncomingMessage, type RequestListener } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import type { Caller, ComsContext } from "../../contract/router.ts";
import { comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { trpcErrorBody } from "./auth.ts";
import { isDashboardFeed, serveDashboardNode } from "./dashboard-mount.ts";
import { HEALTH_BODY, HEALTH_PATH, type ServedHub, type ServeOptions, TRPC_PATH } from "./routes.ts";

const hubRouter = servedRouter(comsRouter);

export function serveNode(opts: ServeOptions): Promise<ServedHub> {
  const callers = new WeakMap<IncomingMessage, Caller | null>();
  const admins = new WeakSet<IncomingMessage>();
  const trpc = createHTTPHandler({
    router: hubRouter,
    basePath: `${TRPC_PATH}/`,
    maxBodySize: opts.maxBodyBytes,
    createContext: ({ req }): ComsContext => ({
      backend: opts.backend,
      caller: callers.get(req) ?? null,
      admin: admins.has(req) ? opts.admin : undefined,
    }),
  });
  const handle: RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://hub");
    if (url.pathname === HEALTH_PATH && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(HEALTH_BODY);
      return;
    }
    if (opts.dashboard?.owns(url.pathname)) {
      void serveDashboardNode(opts.dashboard, req, res, url.pathname);
      return;
    }
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    if (isDashboardFeed(opts.dashboard, url.pathname, header)) {
      admins.add(req);
      callers.set(req, null);
      trpc(req, res);
      return;
    }
    const auth = opts.auth.check(header, req.socket.remoteAddress);
    if (!auth.ok) {
      res.writeHead(auth.status, {
        "content-type": "application/json",
        ...(auth.status === 429
          ? { "retry-after": String(auth.retryAfterSec) }
          : { "www-authenticate": "Bearer" }),
      });
      res.end(trpcErrorBody(auth.kind, auth.message, url));
      req.resume();
      return;
    }
    if (!url.pathname.startsWith(`${TRPC_PATH}/`)) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        trpcErrorBody("NOT_FOUND", `no route ${url.pathname}; procedures live under ${TRPC_PATH}/`, url),
      );
      req.resume();
      return;
    }
    callers.set(req, auth.caller);
    admins.add(req);
    trpc(req, res);
  };
  const server = opts.tls ? createHttpsServer({ ...opts.tls }, handle) : createServer(handle);
  // SSE streams stay open indefinitely; only the request head has a deadline.
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/**
 * The hub as it was served before the lean adapter: tRPC's stock standalone
 * handler behind the same auth check. Kept only so that
 * test/hub-wire-compat.test.ts can compare the lean adapter's bytes with it.
 */
import type { IncomingMessage, RequestListener } from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import type { Caller } from "../../contract/router.ts";
import { comsRouter } from "../../contract/router.ts";
import { trpcErrorBody } from "../../hub/http/auth.ts";
import { listenNode } from "../../hub/http/node.ts";
import {
  HEALTH_BODY,
  HEALTH_PATH,
  type ServedHub,
  type ServeOptions,
  TRPC_PATH,
} from "../../hub/http/routes.ts";
import { servedRouter } from "../../lib/served-router.ts";

const hubRouter = servedRouter(comsRouter);

export function serveNodeStock(opts: ServeOptions): Promise<ServedHub> {
  const callers = new WeakMap<IncomingMessage, Caller | null>();
  const trpc = createHTTPHandler({
    router: hubRouter,
    basePath: `${TRPC_PATH}/`,
    maxBodySize: opts.maxBodyBytes,
    createContext: ({ req }) => ({ backend: opts.backend, caller: callers.get(req) ?? null }),
  });
  const handle: RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://hub");
    if (url.pathname === HEALTH_PATH && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(HEALTH_BODY);
      return;
    }
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
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
    trpc(req, res);
  };
  return listenNode(opts, handle);
}

/** The hub under Bun.serve: tRPC's fetch adapter behind the same auth check as on Node. */
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { trpcErrorBody } from "./auth.ts";
import { isDashboardFeed, serveDashboardFetch } from "./dashboard-mount.ts";
import { HEALTH_BODY, HEALTH_PATH, type ServedHub, type ServeOptions, TRPC_PATH } from "./routes.ts";

const hubRouter = servedRouter(comsRouter);

interface BunServer {
  port: number;
  requestIP(req: Request): { address: string } | null;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface BunRuntime {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    maxRequestBodySize: number;
    tls?: { cert: string; key: string };
    fetch(req: Request, server: BunServer): Response | Promise<Response>;
    error?(error: Error): Response;
  }): BunServer;
}

const json = (status: number, body: string, extra: Record<string, string> = {}) =>
  new Response(body, { status, headers: { "content-type": "application/json", ...extra } });

export async function serveBun(opts: ServeOptions): Promise<ServedHub> {
  const bun = (globalThis as unknown as { Bun: BunRuntime }).Bun;
  const server = bun.serve({
    hostname: opts.host,
    port: opts.port,
    // 0 = no idle timeout: SSE streams are quiet between events.
    idleTimeout: 0,
    maxRequestBodySize: opts.maxBodyBytes,
    ...(opts.tls ? { tls: opts.tls } : {}),
    async fetch(req, bunServer) {
      const url = new URL(req.url);
      if (url.pathname === HEALTH_PATH && req.method === "GET") {
        return json(200, HEALTH_BODY, { "cache-control": "no-store" });
      }
      const remote = bunServer.requestIP(req)?.address;
      if (opts.dashboard?.owns(url.pathname)) {
        return serveDashboardFetch(opts.dashboard, req, url.pathname, remote);
      }
      const header = (name: string) => req.headers.get(name);
      if (isDashboardFeed(opts.dashboard, url.pathname, header)) {
        return fetchRequestHandler({
          endpoint: TRPC_PATH,
          req,
          router: hubRouter,
          createContext: () => ({ backend: opts.backend, caller: null, admin: opts.admin }),
        });
      }
      const auth = opts.auth.check(header, remote);
      if (!auth.ok)
        return json(
          auth.status,
          trpcErrorBody(auth.kind, auth.message, url),
          auth.status === 429
            ? { "retry-after": String(auth.retryAfterSec) }
            : { "www-authenticate": "Bearer" },
        );
      if (!url.pathname.startsWith(`${TRPC_PATH}/`)) {
        return json(
          404,
          trpcErrorBody("NOT_FOUND", `no route ${url.pathname}; procedures live under ${TRPC_PATH}/`, url),
        );
      }
      const length = Number(req.headers.get("content-length") ?? 0);
      if (length > opts.maxBodyBytes) {
        return json(
          413,
          trpcErrorBody("PAYLOAD_TOO_LARGE", `request body over ${opts.maxBodyBytes} bytes`, url),
        );
      }
      return fetchRequestHandler({
        endpoint: TRPC_PATH,
        req,
        router: hubRouter,
        createContext: () => ({ backend: opts.backend, caller: auth.caller, admin: opts.admin }),
      });
    },
    error: (error) => json(500, JSON.stringify({ error: error.message })),
  });
  return {
    port: server.port,
    close: async () => {
      await server.stop(true);
    },
  };
}

/**
 * What every request goes through before a procedure runs, on both runtimes:
 * the route table (health and whatever else is mounted), the hub token and
 * agent credential, the /trpc prefix, the body limit. Answers for refused
 * requests carry tRPC's error shape so typed clients surface them as usual.
 */
import type { Caller } from "../../contract/router.ts";
import { type RemoteAddress, trpcErrorBody } from "./auth.ts";
import { isDashboardFeed } from "./dashboard-mount.ts";
import {
  allowedMethods,
  findRoute,
  ROUTES,
  type RouteAnswer,
  type RouteRequest,
  type ServeOptions,
  TRPC_PATH,
} from "./routes.ts";

export type Entry =
  | { kind: "answer"; answer: RouteAnswer | Promise<RouteAnswer> }
  | { kind: "trpc"; caller: Caller | null; procedurePath: string };

const PREFIX = `${TRPC_PATH}/`;

function refuse(status: number, body: string, headers: Record<string, string> = {}): Entry {
  return {
    kind: "answer",
    answer: { status, headers: { "content-type": "application/json", ...headers }, body },
  };
}

/** The URL a refusal's body is shaped after (batch or not); built only on that path. */
function urlOf(req: RouteRequest): URL {
  const url = new URL(req.path, "http://hub");
  if (req.query) url.search = req.query.toString();
  return url;
}

export function enter(
  req: RouteRequest,
  opts: ServeOptions,
  remote: RemoteAddress,
  contentLength: number,
): Entry {
  const routes = opts.routes ?? ROUTES;
  const route = findRoute(routes, req.method, req.path);
  if (route && !route.auth) return { kind: "answer", answer: route.handle(req, opts) };
  if (!route) {
    // A route's path with another method: 405 naming the ones it answers, not a 404.
    const allow = allowedMethods(routes, req.path);
    if (allow.length > 0) {
      return refuse(
        405,
        trpcErrorBody("METHOD_NOT_SUPPORTED", `${req.method} is not served at ${req.path}`, urlOf(req)),
        { allow: allow.join(", ") },
      );
    }
  }
  // The dashboard's live feed may carry its session header instead of the token (admin.watch only).
  if (isDashboardFeed(opts.dashboard, req.path, req.header)) {
    return { kind: "trpc", caller: null, procedurePath: req.path.slice(PREFIX.length) };
  }
  const auth = opts.auth.check(req.header, remote);
  if (!auth.ok) {
    return refuse(
      auth.status,
      trpcErrorBody(auth.kind, auth.message, urlOf(req)),
      auth.status === 429 ? { "retry-after": String(auth.retryAfterSec) } : { "www-authenticate": "Bearer" },
    );
  }
  if (route) return { kind: "answer", answer: route.handle(req, opts) };
  if (!req.path.startsWith(PREFIX)) {
    return refuse(
      404,
      trpcErrorBody("NOT_FOUND", `no route ${req.path}; procedures live under ${TRPC_PATH}/`, urlOf(req)),
    );
  }
  if (contentLength > opts.maxBodyBytes) return tooLarge(req, opts);
  return { kind: "trpc", caller: auth.caller, procedurePath: req.path.slice(PREFIX.length) };
}

export function tooLarge(req: RouteRequest, opts: ServeOptions): Entry {
  return refuse(
    413,
    trpcErrorBody("PAYLOAD_TOO_LARGE", `request body over ${opts.maxBodyBytes} bytes`, urlOf(req)),
  );
}

/** Path and query of a request target ("/trpc/x?batch=1"), without a URL object on the hot path. */
export function splitTarget(target: string): { path: string; query: URLSearchParams | null } {
  const q = target.indexOf("?");
  if (q === -1) return { path: target, query: null };
  return { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

/** What the two HTTP listeners (Node, Bun) share: their options, their handle, and the routes. */

import type { AdminBackend } from "../../contract/admin.ts";
import type { HubBackend } from "../backend/backend.ts";
import type { RequestAuth } from "./auth.ts";
import type { DashboardRoutes } from "./dashboard-routes.ts";
import type { McpRoute } from "./mcp-route.ts";

export const TRPC_PATH = "/trpc";
export const HEALTH_PATH = "/healthz";
export const HEALTH_BODY = '{"ok":true}';

/** Bytes a stream's reader may fall behind before the hub cuts it (it then resumes by Last-Event-ID). */
export const DEFAULT_MAX_STREAM_BUFFER_BYTES = 256 * 1024;

export interface ServeOptions {
  host: string;
  port: number;
  backend: HubBackend;
  auth: RequestAuth;
  /** Largest request body accepted, in bytes (413 above). */
  maxBodyBytes: number;
  /** Cut an SSE stream whose reader is this many bytes behind (default DEFAULT_MAX_STREAM_BUFFER_BYTES). */
  maxStreamBufferBytes?: number;
  /** Ping quiet event streams this often (default the router's 15 s); readers are told to give up after 2.5 pings of silence. */
  pingMs?: number;
  /** Serve HTTPS with this PEM certificate and key (plain HTTP without). */
  tls?: { cert: string; key: string };
  /** The operator routes (dashboard, sign-in, /metrics), served ahead of tRPC. */
  dashboard?: DashboardRoutes;
  /** MCP over Streamable HTTP at /mcp (one session = one agent). */
  mcp?: McpRoute;
  /** The admin scope (admin.watch), given to requests with the hub token or a dashboard session. */
  admin?: AdminBackend;
  /** Routes served ahead of the tRPC procedures (default: ROUTES). */
  routes?: readonly Route[];
}

export interface ServedHub {
  port: number;
  /** Stop listening and drop every open connection (streams included). */
  close(): Promise<void>;
}

/** A plain (non-tRPC) request as either runtime presents it to a route. */
export interface RouteRequest {
  method: string;
  path: string;
  query: URLSearchParams | null;
  header(name: string): string | null | undefined;
}

export interface RouteAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A route served before the tRPC procedures; `auth: false` routes answer without the hub token. */
export interface Route {
  path: string;
  method: string;
  auth: boolean;
  handle(req: RouteRequest, opts: ServeOptions): RouteAnswer | Promise<RouteAnswer>;
}

export const ROUTES: readonly Route[] = [
  {
    path: HEALTH_PATH,
    method: "GET",
    auth: false,
    handle: () => ({
      status: 200,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
      body: HEALTH_BODY,
    }),
  },
];

/** The route for a method and path, if any; HEAD is served by a GET route (the listeners send no body). */
export function findRoute(routes: readonly Route[], method: string, path: string): Route | undefined {
  const wanted = method === "HEAD" ? "GET" : method;
  for (const route of routes) if (route.path === path && route.method === wanted) return route;
  return undefined;
}

/** The methods a route path answers (for a 405's Allow header); empty when no route has the path. */
export function allowedMethods(routes: readonly Route[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.path !== path) continue;
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
  }
  return [...methods];
}

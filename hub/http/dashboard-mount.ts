/**
 * Putting the operator routes (dashboard-routes.ts) in front of tRPC on each
 * runtime: node:http and Bun.serve / fetch. Kept apart so an adapter mounts
 * them with a couple of lines.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  ADMIN_WATCH_PATH,
  type DashboardRoutes,
  type PlainRequest,
  type PlainResponse,
} from "./dashboard-routes.ts";
import { readBody } from "./node-body.ts";

/** Answer an operator route (`routes.owns(path)`) on node:http. */
export async function serveDashboardNode(
  routes: DashboardRoutes,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const plain: PlainRequest = {
    method: req.method ?? "GET",
    path,
    header: (name) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    },
    remote: req.socket.remoteAddress,
    body: (limit) =>
      readBody(req, limit).then((body) => body ?? Promise.reject(new Error(`body over ${limit} bytes`))),
  };
  let answer: PlainResponse;
  try {
    answer = await routes.handle(plain);
  } catch (error) {
    answer = {
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `${(error as Error).message}\n`,
    };
  }
  res.writeHead(answer.status, answer.headers);
  res.end(req.method === "HEAD" ? undefined : answer.body);
  if (!req.complete) req.resume();
}

/** The same for a fetch-style runtime (Bun.serve). */
export async function serveDashboardFetch(
  routes: DashboardRoutes,
  req: Request,
  path: string,
  remote: string | undefined,
): Promise<Response> {
  const answer = await routes.handle({
    method: req.method,
    path,
    header: (name) => req.headers.get(name),
    remote,
    body: async (limit) => {
      // A body declared too long may already have been read and thrown away (see bun.ts).
      if (Number(req.headers.get("content-length") ?? 0) > limit) throw new Error(`body over ${limit} bytes`);
      const text = await req.text();
      if (Buffer.byteLength(text) > limit) throw new Error(`body over ${limit} bytes`);
      return text;
    },
  });
  return new Response(req.method === "HEAD" ? null : answer.body, {
    status: answer.status,
    headers: answer.headers,
  });
}

/**
 * Whether a tRPC request is the dashboard's live feed carrying its session
 * header (no bearer token): the only tRPC call a session may make.
 */
export function isDashboardFeed(
  routes: DashboardRoutes | undefined,
  path: string,
  header: PlainRequest["header"],
): boolean {
  return (
    routes !== undefined && path === ADMIN_WATCH_PATH && !header("authorization") && routes.signedIn(header)
  );
}

/**
 * The hub on Bun: agents' plain requests read straight off Bun's sockets
 * (bun-h1.ts, the same reader and answers as on Node); the operator routes,
 * /mcp and anything out of the ordinary served by Bun.serve, with the same
 * front door, protocol and SSE writer, written into Bun's native Response
 * (no tRPC fetch adapter).
 */
import { listenBun } from "./bun-h1.ts";
import { callServing, hubRouter } from "./call-serving.ts";
import { serveDashboardFetch } from "./dashboard-mount.ts";
import { enter, splitTarget, tooLarge } from "./front-door.ts";
import { H1Connections } from "./h1-connection.ts";
import type { RouteAnswer, ServedHub, ServeOptions } from "./routes.ts";
import { SSE_HEADERS } from "./sse-writer.ts";
import { dispatch, type TrpcAnswer } from "./trpc-dispatch.ts";

interface BunServer {
  port: number;
  requestIP(req: Request): { address: string; port: number } | null;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface BunRuntime {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    maxRequestBodySize: number;
    fetch(req: Request, server: BunServer): Response | Promise<Response>;
    error?(error: Error): Response;
  }): BunServer;
}

const toResponse = ({ status, headers, body }: RouteAnswer) => new Response(body, { status, headers });

/**
 * How far past the body limit Bun still reads a request. Bun refuses a body
 * over its own `maxRequestBodySize` by closing the socket with the body unread,
 * so the client sees EPIPE or a reset instead of the 413; below this cap the
 * hub reads the excess and throws it away first, so the 413 arrives.
 */
const DRAIN_FACTOR = 8;

/** Read a declared-oversized body to its end, keeping none of it, so the refusal that follows is seen. */
async function discardBody(req: Request): Promise<void> {
  const reader = req.body?.getReader();
  if (!reader) return;
  try {
    for (;;) if ((await reader.read()).done) return;
  } catch {
    // The client gave up first: nothing is left to answer.
  }
}

export async function serveBun(opts: ServeOptions): Promise<ServedHub> {
  const bun = (globalThis as unknown as { Bun: BunRuntime }).Bun;
  const { streams, plain } = callServing(opts);
  /** The client address behind each pipe from the agents' listener, by the pipe's port. */
  const proxied = new Map<number, string>();
  const encoder = new TextEncoder();

  const respond = (result: TrpcAnswer, req: Request): Response => {
    if (result.kind === "json") {
      const headers: Record<string, string> = {
        vary: "trpc-accept, accept",
        "content-type": "application/json",
      };
      if (result.allow) headers.allow = result.allow;
      return new Response(result.body, { status: result.status, headers });
    }
    if (result.kind === "empty") {
      return new Response(null, {
        status: result.status,
        headers: result.allow ? { allow: result.allow } : {},
      });
    }
    let stop: (() => void) | undefined;
    let drained: (() => void) | undefined;
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          let open = true;
          stop = streams.start(
            {
              write: (chunk) => {
                if (open) controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
              },
              // What the stream holds that Bun has not taken for the socket yet.
              buffered: () => -(controller.desiredSize ?? 0),
              end: () => {
                if (!open) return;
                open = false;
                controller.close();
              },
              cut: () => {
                if (!open) return;
                open = false;
                controller.error(new Error("reader too far behind"));
              },
              onDrain: (fn) => {
                drained = fn;
              },
            },
            result,
          );
          req.signal.addEventListener("abort", () => stop?.(), { once: true });
        },
        // Bun asks for more once it has handed what the stream held to the socket.
        pull(controller) {
          if (!drained || (controller.desiredSize ?? 0) < 0) return;
          const fn = drained;
          drained = undefined;
          fn();
        },
        cancel() {
          stop?.();
        },
      },
      { highWaterMark: 0, size: (chunk) => chunk.byteLength },
    );
    return new Response(body, { status: 200, headers: SSE_HEADERS });
  };

  // Only the pipes of connections handed over by the agents' listener reach this server.
  const server = bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // 0 = no idle timeout: SSE streams are quiet between events.
    idleTimeout: 0,
    maxRequestBodySize: opts.maxBodyBytes * DRAIN_FACTOR,
    async fetch(req, bunServer) {
      const pipe = bunServer.requestIP(req);
      const remote = pipe ? proxied.get(pipe.port) : undefined;
      if (remote === undefined) return new Response(null, { status: 403 });
      const target = req.url.slice(req.url.indexOf("/", req.url.indexOf("//") + 2));
      const { path, query } = splitTarget(target);
      const length = Number(req.headers.get("content-length") ?? 0);
      // Every route below refuses such a body by its declared length without reading it.
      if (length > opts.maxBodyBytes) await discardBody(req);
      if (opts.dashboard?.owns(path)) {
        return serveDashboardFetch(opts.dashboard, req, path, remote);
      }
      if (opts.mcp?.owns(path)) return opts.mcp.handle(req, remote);
      const method = req.method;
      const header = (name: string) => req.headers.get(name);
      const request = { method, path, query, header };
      const entry = enter(request, opts, remote, length);
      if (entry.kind === "answer") return toResponse(await entry.answer);
      const body = method === "GET" || method === "HEAD" ? "" : await req.text();
      if (body.length * 3 > opts.maxBodyBytes && Buffer.byteLength(body) > opts.maxBodyBytes) {
        const refused = tooLarge(request, opts);
        if (refused.kind === "answer") return toResponse(await refused.answer);
      }
      const ctx = { backend: opts.backend, caller: entry.caller, admin: opts.admin };
      return respond(
        await dispatch(hubRouter, { method, path: entry.procedurePath, query, header, body, ctx }),
        req,
      );
    },
    error: (error) =>
      new Response(JSON.stringify({ error: error.message }), {
        status: 500,
        headers: { "content-type": "application/json" },
      }),
  });
  const h1 = new H1Connections(plain);
  const listener = listenBun(opts, h1, server.port, proxied);
  return {
    port: listener.port,
    close: async () => {
      streams.closeAll();
      h1.closeAll();
      listener.stop(true);
      await server.stop(true);
    },
  };
}

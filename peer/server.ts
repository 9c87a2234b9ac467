/**
 * Serves the coms router on a node-ipc Unix socket. Each connection gets its
 * own ComsContext, so an `agents.hello` binds the verified agent to that
 * connection only; every frame is checked against contract/frames.ts before
 * anything runs, and a bad frame gets an error answer while the connection
 * and the process carry on.
 */
import { chmodSync, lstatSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { dirname } from "node:path";
import { getTRPCErrorFromUnknown, getTRPCErrorShape, isTrackedEnvelope, TRPCError } from "@trpc/server";
import type { IPCServer } from "node-ipc";
import { ComsError } from "../contract/errors.ts";
import { FRAME_EVENT, parseClientFrame, type RequestFrame, type ServerFrame } from "../contract/frames.ts";
import { type Caller, type ComsBackend, type ComsContext, comsRouter } from "../contract/router.ts";
import { ensurePrivateDir } from "../lib/private-fs.ts";
import { deserializeWire, serializeWire } from "../lib/wire-transformer.ts";
import { REJECT_EVENT, type RejectedFrame, serverModule } from "./ipc.ts";
import { checkSocketPath } from "./paths.ts";
import { callProcedure } from "./procedure.ts";

/** Running subscriptions one connection may hold at once. */
const MAX_SUBSCRIPTIONS_PER_CONNECTION = 16_384;

export interface PeerServerOptions {
  socketPath: string;
  backend: ComsBackend;
  /** Called when a connection closes, with the agent it had verified (if any). */
  onDisconnect?: (caller: Caller | null) => void;
}

export interface PeerServer {
  readonly socketPath: string;
  /** Open connections (for tests and diagnostics). */
  connections(): number;
  /** Wait (bounded) until every frame written so far has left for the kernel. */
  flush(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface Connection {
  ctx: ComsContext;
  subscriptions: Map<number, AbortController>;
  closed: boolean;
}

const config = comsRouter._def._config;

export async function startPeerServer(opts: PeerServerOptions): Promise<PeerServer> {
  checkSocketPath(opts.socketPath);
  const root = ensurePrivateDir(dirname(opts.socketPath));
  const ipc = serverModule(root);
  const connections = new Map<Socket, Connection>();

  ipc.serve(opts.socketPath);
  const server = ipc.server as IPCServer;

  const connectionOf = (socket: Socket): Connection => {
    let conn = connections.get(socket);
    if (!conn) {
      const ctx: ComsContext = { backend: opts.backend, caller: null };
      ctx.bindCaller = (caller) => {
        ctx.caller = caller;
      };
      conn = { ctx, subscriptions: new Map(), closed: false };
      connections.set(socket, conn);
    }
    return conn;
  };

  // Frames produced while one read chunk is handled leave in one write: the flush runs
  // on nextTick, after the promise jobs of that chunk and before the event loop goes on,
  // so a lone call waits for nothing and a pipelined burst costs one syscall, not one each.
  // A stream value (an outcome batch, a watch update) is not waited on by any call: it goes
  // with the next answer on its connection, or once the loop has polled for more input
  // (setImmediate), so a sender that answers an ack with its next request gets the outcome
  // of the last message in the same write as the next ack, and wakes once, not twice.
  const outgoing = new Map<Socket, string[]>();
  let flushQueued = false;
  let lazyQueued = false;
  const flushOutgoing = () => {
    flushQueued = false;
    for (const [socket, frames] of outgoing) {
      outgoing.delete(socket);
      if (!socket.destroyed)
        server.writeStream(socket, frames.length === 1 ? (frames[0] as string) : frames.join(""));
    }
  };
  const flushLazy = () => {
    lazyQueued = false;
    if (!flushQueued) flushOutgoing();
  };
  const send = (socket: Socket, frame: ServerFrame, lazy = false): void => {
    if (socket.destroyed) return;
    try {
      const encoded = server.encode(FRAME_EVENT, frame);
      const queued = outgoing.get(socket);
      if (queued) queued.push(encoded);
      else outgoing.set(socket, [encoded]);
      if (lazy) {
        if (!lazyQueued && !flushQueued) {
          lazyQueued = true;
          setImmediate(flushLazy);
        }
      } else if (!flushQueued) {
        flushQueued = true;
        process.nextTick(flushOutgoing);
      }
    } catch (cause) {
      // Only an over-limit frame fails to encode: tell the caller instead.
      if (frame.k === "error") return;
      const error = new TRPCError({
        code: "PAYLOAD_TOO_LARGE",
        message: "response exceeds the frame limit",
        cause,
      });
      send(socket, errorFrame(frame.id, error, undefined, undefined, null));
    }
  };

  server.on("connect", (socket: Socket) => {
    connectionOf(socket);
  });
  server.on("socket.disconnected", (socket: Socket) => {
    const conn = connections.get(socket);
    if (!conn) return;
    connections.delete(socket);
    conn.closed = true;
    for (const controller of conn.subscriptions.values()) controller.abort();
    conn.subscriptions.clear();
    opts.onDisconnect?.(conn.ctx.caller);
  });
  server.on("error", () => {
    // Socket-level errors end in socket.disconnected; nothing else to do.
  });
  server.on(REJECT_EVENT, (data: RejectedFrame, socket: Socket) => {
    const code = data.code === "TOO_LARGE" ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST";
    send(
      socket,
      errorFrame(data.id, new TRPCError({ code, message: data.reason }), undefined, undefined, null),
    );
  });
  server.on(FRAME_EVENT, (data: unknown, socket: Socket) => {
    try {
      onFrame(connectionOf(socket), socket, data);
    } catch (cause) {
      // A handler must never throw back into node-ipc's read loop.
      send(socket, errorFrame(null, getTRPCErrorFromUnknown(cause), undefined, undefined, null));
    }
  });

  const onFrame = (conn: Connection, socket: Socket, data: unknown): void => {
    const parsed = parseClientFrame(data);
    if (!parsed.success) {
      const id = (data as { id?: unknown } | null)?.id;
      const message = `bad frame: ${parsed.error.issues.map((i) => `${i.path.join(".") || "frame"}: ${i.message}`).join("; ")}`;
      send(
        socket,
        errorFrame(
          typeof id === "number" && Number.isSafeInteger(id) && id >= 0 ? id : null,
          new TRPCError({ code: "BAD_REQUEST", message }),
          undefined,
          undefined,
          null,
        ),
      );
      return;
    }
    const frame = parsed.data;
    if (frame.k === "stop") {
      conn.subscriptions.get(frame.id)?.abort();
      return;
    }
    void runRequest(conn, socket, frame);
  };

  const runRequest = (conn: Connection, socket: Socket, frame: RequestFrame): Promise<void> =>
    frame.type === "subscription" ? runSubscription(conn, socket, frame) : runCall(conn, socket, frame);

  const runCall = async (conn: Connection, socket: Socket, frame: RequestFrame): Promise<void> => {
    const { id, type, path } = frame;
    let input: unknown;
    try {
      input = decodeInput(frame.input);
      const decoded = input;
      // Only the options a procedure uses: every middleware level copies them.
      const result = await callProcedure({ path, type, ctx: conn.ctx, getRawInput: () => decoded });
      send(socket, { k: "data", id, data: serializeWire(result) });
    } catch (cause) {
      send(socket, errorFrame(id, getTRPCErrorFromUnknown(cause), type, path, conn.ctx, input));
    }
  };

  const runSubscription = async (conn: Connection, socket: Socket, frame: RequestFrame): Promise<void> => {
    const { id, type, path } = frame;
    if (conn.subscriptions.has(id)) {
      send(
        socket,
        errorFrame(
          id,
          new TRPCError({ code: "BAD_REQUEST", message: `duplicate id ${id}` }),
          type,
          path,
          conn.ctx,
        ),
      );
      return;
    }
    if (conn.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
      const error = new TRPCError({
        code: "TOO_MANY_REQUESTS",
        message: "too many subscriptions on one connection",
      });
      send(socket, errorFrame(id, error, type, path, conn.ctx));
      return;
    }
    const controller = new AbortController();
    conn.subscriptions.set(id, controller);
    let input: unknown;
    try {
      input = decodeInput(frame.input);
      const decoded = input;
      const result = await callProcedure({
        path,
        type,
        ctx: conn.ctx,
        getRawInput: () => decoded,
        signal: controller.signal,
      });
      if (!isAsyncIterable(result))
        throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "not a stream" });
      if (conn.closed || controller.signal.aborted) return;
      send(socket, { k: "started", id });
      const iterator = result[Symbol.asyncIterator]();
      const nextOrStop = stoppable(iterator, controller.signal);
      try {
        while (true) {
          const next = await nextOrStop();
          if (next === "stopped" || next.done) break;
          const value = isTrackedEnvelope(next.value)
            ? { id: next.value[0], data: next.value[1] }
            : next.value;
          send(socket, { k: "data", id, data: serializeWire(value) }, true);
        }
      } finally {
        void iterator.return?.(undefined)?.catch(() => {});
      }
      send(socket, { k: "stopped", id });
    } catch (cause) {
      if (controller.signal.aborted) {
        send(socket, { k: "stopped", id });
        return;
      }
      send(socket, errorFrame(id, getTRPCErrorFromUnknown(cause), type, path, conn.ctx, input));
    } finally {
      conn.subscriptions.delete(id);
    }
  };

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.on("error", onError);
    server.on("start", () => {
      server.off("error", onError);
      resolve();
    });
    server.start();
  });
  // The directory is already 0700 and ours; the socket itself is tightened too (never through a link).
  if (!lstatSync(opts.socketPath).isSocket()) {
    server.stop();
    throw new Error(`refusing to use ${opts.socketPath}: it is not the socket just created`);
  }
  chmodSync(opts.socketPath, 0o600);

  return {
    socketPath: opts.socketPath,
    connections: () => connections.size,
    flush: async (timeoutMs = 500) => {
      flushOutgoing();
      const deadline = Date.now() + timeoutMs;
      const queued = () =>
        [...connections.keys()].some((socket) => !socket.destroyed && socket.writableLength > 0);
      while (queued() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    },
    close: async () => {
      const net = server.server || undefined;
      await new Promise<void>((resolve) => {
        if (!net?.listening) return resolve();
        net.once("close", () => resolve());
        server.stop();
      });
      rmSync(opts.socketPath, { force: true });
    },
  };
}

function errorFrame(
  id: number | null,
  error: TRPCError,
  type: RequestFrame["type"] | undefined,
  path: string | undefined,
  ctx: ComsContext | null,
  input?: unknown,
): ServerFrame {
  let shape: unknown;
  try {
    shape = getTRPCErrorShape({ config, error, type: type ?? "unknown", path, input, ctx: ctx ?? undefined });
  } catch {
    shape = {
      code: -32603,
      message: "Internal server error",
      data: { code: "INTERNAL_SERVER_ERROR", coms_code: null },
    };
  }
  return { k: "error", id, error: serializeWire(shape) };
}

/** The superjson-encoded input, or a BAD_REQUEST that says so (never an internal error). */
function decodeInput(raw: unknown): unknown {
  if (raw === undefined) return undefined;
  try {
    return deserializeWire(raw);
  } catch (cause) {
    // A bound crossed names its limit; anything else stays generic.
    const message = cause instanceof ComsError ? cause.message : "input cannot be decoded";
    throw new TRPCError({ code: "BAD_REQUEST", message, cause });
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value != null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

/**
 * The iterator's next value, or "stopped" once the signal aborts, whichever
 * comes first; one abort listener for the whole stream, not one per value.
 * Not Promise.race against one long-lived promise: each race leaves a
 * reaction on that promise holding the race's result, so a long subscription
 * would keep every value it ever sent (measured: each outcome batch of a P2P
 * stream). Only the latest next() is held here.
 */
function stoppable<T>(
  iterator: AsyncIterator<T>,
  signal: AbortSignal,
): () => Promise<IteratorResult<T> | "stopped"> {
  let stop: ((value: "stopped") => void) | undefined;
  signal.addEventListener("abort", () => stop?.("stopped"), { once: true });
  return () => {
    if (signal.aborted) return Promise.resolve("stopped");
    return new Promise((resolve, reject) => {
      stop = resolve;
      iterator.next().then(resolve, reject);
    });
  };
}

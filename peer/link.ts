/**
 * The client side of the P2P transport: one long-lived node-ipc connection to
 * a peer's socket (IpcChannel) and a tRPC link over it (ipcLink). Calls carry
 * request ids; queries and mutations have a per-call timeout; subscriptions
 * stream until they end or are unsubscribed (a stop frame). When the socket
 * closes every call in flight fails with PEER_GONE at once, and the next call
 * connects again, so a peer that comes back is reached without a new client.
 */

import { dirname } from "node:path";
import { TRPCClientError, type TRPCLink } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import type { IPCClient, IPCModule } from "node-ipc";
import { ErrorShape, FRAME_EVENT, parseServerFrame, type ServerFrame } from "../contract/frames.ts";
import type { ComsRouter } from "../contract/router.ts";
import type { ErrorCode } from "../contract/schemas.ts";
import { deserializeAnswer, serializeWire } from "../lib/wire-transformer.ts";
import { Deadlines } from "./deadlines.ts";
import { clientModule } from "./ipc.ts";

export type CallType = "query" | "mutation" | "subscription";

export interface CallHandlers {
  data(value: unknown): void;
  error(error: TRPCClientError<ComsRouter>): void;
  /** Subscriptions: the server started streaming. */
  started?(): void;
  /** Subscriptions: the stream ended normally. */
  stopped?(): void;
}

/** Sends one call on an open connection; used by handshakes, which run before the channel is ready. */
export type RawCall = (path: string, input: unknown, type?: CallType) => Promise<unknown>;

export interface IpcChannelOptions {
  /** The peer's socket; a function is asked again on every (re)connect. */
  socketPath: string | (() => string | Promise<string>);
  /** Queries and mutations fail with TIMEOUT after this long (default 10 s). */
  callTimeoutMs?: number;
  /** Runs on each fresh connection before any queued call, e.g. `agents.hello`. */
  handshake?: (call: RawCall) => Promise<void>;
  /** Told when a connection opens (after the handshake) or closes. */
  onState?: (state: "open" | "closed", reason?: string) => void;
}

interface Pending extends CallHandlers {
  type: CallType;
  path: string;
}

interface Connection {
  ipc: IPCModule;
  client: IPCClient | undefined;
  pending: Map<number, Pending>;
  /** When each query or mutation in flight times out. */
  deadlines: Deadlines<number>;
  /** Resolves once connected and handshaken; rejects when either fails. */
  ready: Promise<void>;
  isReady: boolean;
  closed: boolean;
  /** Frames waiting for this tick's single write. */
  outgoing: string[];
  /** Subscription frames read but not yet handed on (see onFrame). */
  streamed: Array<{ pending: Pending; frame: ServerFrame }>;
}

const IPC_ID = "peer";

/** The tRPC code a locally raised failure is filed under (what a server would have said). */
const LOCAL_TRPC_CODE: Partial<Record<ErrorCode, string>> = {
  PEER_GONE: "SERVICE_UNAVAILABLE",
  TIMEOUT: "TIMEOUT",
  CANCELLED: "CLIENT_CLOSED_REQUEST",
  TOO_LARGE: "PAYLOAD_TOO_LARGE",
  BAD_INPUT: "BAD_REQUEST",
};

/** A TRPCClientError carrying a pi-coms code, built on this side of the socket. */
export function localError(code: ErrorCode, message: string, cause?: unknown): TRPCClientError<ComsRouter> {
  const data = { code: LOCAL_TRPC_CODE[code] ?? "INTERNAL_SERVER_ERROR", coms_code: code };
  return TRPCClientError.from<ComsRouter>({ error: { code: -32000, message, data } } as never, {
    cause: cause instanceof Error ? cause : undefined,
  });
}

export class IpcChannel {
  private readonly opts: IpcChannelOptions;
  private conn: Connection | null = null;
  private nextId = 1;
  private shut = false;

  constructor(opts: IpcChannelOptions) {
    this.opts = opts;
  }

  /** Whether a connection is currently open and handshaken. */
  get open(): boolean {
    return this.conn?.isReady === true && !this.conn.closed;
  }

  /** Start a call; returns a function that cancels it (a stop frame for subscriptions). */
  call(
    type: CallType,
    path: string,
    input: unknown,
    handlers: CallHandlers,
    signal?: AbortSignal | null,
  ): () => void {
    if (this.shut) {
      handlers.error(localError("PEER_GONE", "the link is closed"));
      return () => {};
    }
    const conn = this.connection();
    const id = this.nextId++;
    let done = false;
    const pending: Pending = {
      type,
      path,
      data: (value) => {
        if (type !== "subscription") finish();
        handlers.data(value);
      },
      error: (error) => {
        finish();
        handlers.error(error);
      },
      started: () => handlers.started?.(),
      stopped: () => {
        finish();
        handlers.stopped?.();
      },
    };
    const onAbort = () => cancel(true);
    const finish = () => {
      done = true;
      if (type !== "subscription") conn.deadlines.delete(id);
      conn.pending.delete(id);
      signal?.removeEventListener("abort", onAbort);
    };
    const cancel = (aborted: boolean) => {
      if (done) return;
      finish();
      if (type === "subscription" && conn.isReady && !conn.closed) this.emit(conn, { k: "stop", id });
      if (aborted) handlers.error(localError("CANCELLED", "the call was cancelled"));
    };
    if (signal?.aborted) {
      handlers.error(localError("CANCELLED", "the call was cancelled"));
      return () => {};
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    conn.pending.set(id, pending);
    if (type !== "subscription") conn.deadlines.add(id);
    const send = () => {
      if (done) return;
      let encoded: unknown;
      try {
        encoded = input === undefined ? undefined : serializeWire(input);
      } catch (cause) {
        pending.error(localError("BAD_INPUT", "input cannot be serialised", cause));
        return;
      }
      this.emit(conn, { k: "req", id, type, path, input: encoded }, pending);
    };
    if (conn.isReady) send();
    else conn.ready.then(send, () => {});
    return () => cancel(false);
  }

  /** A promise-returning query/mutation (used by handshakes and simple callers). */
  request(path: string, input: unknown, type: "query" | "mutation" = "mutation"): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.call(type, path, input, { data: resolve, error: reject });
    });
  }

  /** Drop the connection (calls in flight fail with PEER_GONE); the next call reconnects. */
  reset(reason = "connection reset"): void {
    if (this.conn) this.teardown(this.conn, reason);
  }

  /** Close for good: calls in flight and later fail with PEER_GONE. */
  close(): void {
    this.shut = true;
    this.reset("the link is closed");
  }

  private emit(conn: Connection, frame: unknown, pending?: Pending): void {
    try {
      if (!conn.client || conn.closed) throw new Error("not connected");
      // Framed now (an oversized frame fails this call), written with the others of this tick.
      conn.outgoing.push(conn.client.encode(FRAME_EVENT, frame));
      if (conn.outgoing.length === 1) process.nextTick(() => this.flush(conn));
    } catch (cause) {
      const tooLarge = (cause as { code?: string }).code === "ERR_IPC_FRAME_TOO_LARGE";
      pending?.error(
        tooLarge
          ? localError("TOO_LARGE", "the request exceeds the frame limit", cause)
          : localError("PEER_GONE", `cannot write to the peer: ${(cause as Error).message}`, cause),
      );
    }
  }

  private flush(conn: Connection): void {
    const frames = conn.outgoing;
    if (frames.length === 0) return;
    conn.outgoing = [];
    if (!conn.client || conn.closed) return;
    conn.client.send(frames.length === 1 ? (frames[0] as string) : frames.join(""));
  }

  private connection(): Connection {
    if (this.conn && !this.conn.closed) return this.conn;
    let markReady: () => void = () => {};
    let markFailed: (error: unknown) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    ready.catch(() => {});
    const ms = this.opts.callTimeoutMs ?? 10_000;
    const pending = new Map<number, Pending>();
    const conn: Connection = {
      ipc: undefined as unknown as IPCModule,
      client: undefined,
      pending,
      deadlines: new Deadlines(ms, (id) => {
        const call = pending.get(id);
        call?.error(localError("TIMEOUT", `${call.path} got no answer within ${ms} ms`));
      }),
      ready,
      isReady: false,
      closed: false,
      outgoing: [],
      streamed: [],
    };
    this.conn = conn;
    this.open_(conn, markReady, markFailed).catch((error: unknown) => {
      markFailed(error);
      this.teardown(conn, `cannot connect: ${(error as Error).message}`, error);
    });
    return conn;
  }

  private async open_(
    conn: Connection,
    markReady: () => void,
    markFailed: (e: unknown) => void,
  ): Promise<void> {
    let path: string;
    try {
      path = typeof this.opts.socketPath === "function" ? await this.opts.socketPath() : this.opts.socketPath;
    } catch (error) {
      markFailed(error);
      this.teardown(conn, (error as Error).message, error);
      return;
    }
    if (conn.closed) return;
    const ipc = clientModule(dirname(path));
    conn.ipc = ipc;
    let lastError: Error | undefined;
    ipc.connectTo(IPC_ID, path);
    const client = ipc.of[IPC_ID];
    if (!client) {
      this.teardown(conn, "cannot create a connection");
      return;
    }
    conn.client = client;
    client.on("error", (error: Error) => {
      lastError = error;
    });
    client.on("disconnect", () => {
      markFailed(lastError ?? new Error("disconnected"));
      this.teardown(
        conn,
        lastError ? `connection lost: ${lastError.message}` : "the peer closed the connection",
      );
    });
    client.on(FRAME_EVENT, (data: unknown) => {
      try {
        this.onFrame(conn, data);
      } catch {
        // Never throw into node-ipc's read loop; a frame we cannot handle is dropped.
      }
    });
    client.on("connect", () => {
      void (async () => {
        try {
          if (this.opts.handshake) {
            await this.opts.handshake((p, input, type = "mutation") => this.rawCall(conn, p, input, type));
          }
          if (conn.closed) return;
          conn.isReady = true;
          markReady();
          this.opts.onState?.("open");
        } catch (error) {
          markFailed(error);
          const reason = `handshake failed: ${(error as Error).message}`;
          this.teardown(conn, reason, error);
        }
      })();
    });
  }

  /** A call that skips the ready gate: only for the handshake on a just-opened connection. */
  private rawCall(conn: Connection, path: string, input: unknown, type: CallType): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const done = () => {
        conn.deadlines.delete(id);
        conn.pending.delete(id);
      };
      const pending: Pending = {
        type,
        path,
        data: (value) => {
          done();
          resolve(value);
        },
        error: (error) => {
          done();
          reject(error);
        },
      };
      conn.pending.set(id, pending);
      conn.deadlines.add(id);
      this.emit(conn, { k: "req", id, type, path, input: serializeWire(input) }, pending);
    });
  }

  private onFrame(conn: Connection, data: unknown): void {
    const parsed = parseServerFrame(data);
    if (!parsed.success) return;
    const frame = parsed.data;
    if (frame.id === null) return;
    const pending = conn.pending.get(frame.id);
    if (!pending) return;
    if (pending.type === "subscription") {
      // Stream values wait for the check phase: an answer read in the same chunk (an ack
      // followed by an outcome batch) resolves first, and the caller's next request leaves
      // before this side spends time on the stream. Their order among themselves is kept.
      conn.streamed.push({ pending, frame });
      if (conn.streamed.length === 1) setImmediate(() => this.drainStreamed(conn));
      return;
    }
    this.deliver(pending, frame);
  }

  /** Hands on the stream frames read so far, unless their call has ended meanwhile. */
  private drainStreamed(conn: Connection): void {
    const queued = conn.streamed;
    if (queued.length === 0) return;
    conn.streamed = [];
    for (const { pending, frame } of queued) {
      if (frame.id !== null && conn.pending.get(frame.id) === pending) {
        try {
          this.deliver(pending, frame);
        } catch {
          // One stream's failing handler must not cost the others their frames.
        }
      }
    }
  }

  private deliver(pending: Pending, frame: ServerFrame): void {
    switch (frame.k) {
      case "data": {
        let value: unknown;
        try {
          value = deserializeAnswer(frame.data);
        } catch (error) {
          // An answer this side cannot decode ends that one call, never the connection's reader.
          pending.error(localError("BAD_INPUT", (error as Error).message, error));
          return;
        }
        pending.data(value);
        return;
      }
      case "started":
        pending.started?.();
        return;
      case "stopped":
        pending.stopped?.();
        return;
      case "error":
        pending.error(toClientError(frame.error));
        return;
    }
  }

  private teardown(conn: Connection, reason: string, cause?: unknown): void {
    if (conn.closed) return;
    // What was read before the close still counts (a reply, then the peer exits).
    this.drainStreamed(conn);
    conn.closed = true;
    if (this.conn === conn) this.conn = null;
    const fromCause = cause instanceof TRPCClientError ? (cause as TRPCClientError<ComsRouter>) : undefined;
    for (const pending of [...conn.pending.values()]) {
      pending.error(fromCause ?? localError("PEER_GONE", reason, cause));
    }
    conn.pending.clear();
    conn.deadlines.clear();
    try {
      conn.ipc?.disconnect(IPC_ID);
    } catch {
      // Already gone.
    }
    if (conn.isReady) this.opts.onState?.("closed", reason);
  }
}

function toClientError(raw: unknown): TRPCClientError<ComsRouter> {
  let decoded: unknown;
  try {
    decoded = deserializeAnswer(raw);
  } catch {
    return localError("PEER_GONE", "the peer sent an unreadable error");
  }
  const shape = ErrorShape.safeParse(decoded);
  if (!shape.success) return localError("PEER_GONE", "the peer sent an unreadable error");
  return TRPCClientError.from<ComsRouter>({ error: shape.data } as never);
}

/** A terminating tRPC link that runs every operation over the channel. */
export function ipcLink(channel: IpcChannel): TRPCLink<ComsRouter> {
  return () =>
    ({ op }) =>
      observable((observer) => {
        const cancel = channel.call(
          op.type,
          op.path,
          op.input,
          {
            // A query/mutation result is not followed by complete(): the promise
            // client resolves on the first value, and completing makes it build and
            // abort an AbortController per call (a third of the client's cost).
            // Nothing is left behind: the call's bookkeeping ended with the value.
            data: (data) => observer.next({ result: { type: "data", data } }),
            error: (error) => observer.error(error),
            started: () => observer.next({ result: { type: "started" } }),
            stopped: () => observer.complete(),
          },
          op.signal,
        );
        return () => cancel();
      });
}

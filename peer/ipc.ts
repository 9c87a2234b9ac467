/**
 * node-ipc set-up shared by the peer server and the link: one IPCModule per
 * endpoint (never the library's singleton), the `guarded` parser with a frame
 * limit, no library logging, no library-driven reconnects (the link decides).
 */
import { GuardedParser, type IPCConfig, IPCModule, IPCProtocolError } from "node-ipc";
import { FRAME_EVENT } from "../contract/frames.ts";
import { MAX_TEXT_LENGTH } from "../contract/schemas.ts";

/**
 * Largest frame either side accepts, in bytes. A maximal prompt is
 * MAX_TEXT_LENGTH UTF-16 units; JSON escaping can grow one unit to six bytes
 * (`\u0001`), and the envelope adds a little: 2 MiB covers the worst case.
 */
export const MAX_FRAME_BYTES = Math.max(2 * 1024 * 1024, MAX_TEXT_LENGTH * 6 + 64 * 1024);

/**
 * Bytes a connection may have queued for writing before it is dropped (a
 * reader that stopped reading). Several maximal frames must fit.
 */
export const MAX_PENDING_BYTES = 16 * MAX_FRAME_BYTES;

/** A partial frame that stays incomplete this long closes the connection (slowloris guard). */
export const FRAME_TIMEOUT_MS = 30_000;

/** Event the server-side parser emits, instead of dropping the connection, for a frame it refused. */
export const REJECT_EVENT = "coms.reject";

export interface RejectedFrame {
  /** TOO_LARGE for an oversized frame, BAD_INPUT for anything else. */
  code: "TOO_LARGE" | "BAD_INPUT";
  reason: string;
  /** The request id, when the frame was readable enough to carry one. */
  id: number | null;
}

/**
 * Marks a connection's buffer while the rest of an oversized frame is skipped.
 * A lone surrogate: sockets are read as UTF-8, whose decoder never yields
 * one, so no byte a peer sends (a NUL included) can be taken for the marker.
 */
export const DISCARDING = "\udfff";

/**
 * The guarded parser with the same limits, except that a bad frame does not
 * cost the connection: it is reported as a REJECT_EVENT (so the server can
 * answer it) and the stream resynchronises on the next delimiter. That is
 * sound because JSON.stringify escapes the form-feed delimiter inside strings,
 * so a raw delimiter only ever ends a frame.
 */
export class ResyncParser extends GuardedParser {
  override read(buffer: string, data: string, receive: (message: unknown) => void): string {
    let combined = buffer ? buffer + data : data;
    const delimiter = this.delimiter;
    if (combined.startsWith(DISCARDING)) {
      const end = combined.indexOf(delimiter);
      if (end === -1) return DISCARDING;
      combined = combined.slice(end + delimiter.length);
    }
    let start = 0;
    let end = combined.indexOf(delimiter);
    while (end !== -1) {
      receive(this.checkFrame(combined.slice(start, end)));
      start = end + delimiter.length;
      end = combined.indexOf(delimiter, start);
    }
    const rest = start === 0 ? combined : combined.slice(start);
    if (Buffer.byteLength(rest) > this.maxMessageSize) {
      receive(rejected("TOO_LARGE", `frame exceeds ${this.maxMessageSize} bytes`, null));
      return DISCARDING;
    }
    return rest;
  }

  private checkFrame(frame: string): unknown {
    if (Buffer.byteLength(frame) > this.maxMessageSize) {
      return rejected("TOO_LARGE", `frame exceeds ${this.maxMessageSize} bytes`, null);
    }
    let message: { type: string; data: unknown };
    try {
      message = this.decodeMessage(frame);
    } catch (error) {
      const reason = error instanceof IPCProtocolError ? error.message : "unreadable frame";
      return rejected("BAD_INPUT", `malformed frame: ${reason}`, null);
    }
    if (message.type !== FRAME_EVENT) {
      return rejected("BAD_INPUT", `unknown event type (expected "${FRAME_EVENT}")`, idOf(message.data));
    }
    return message;
  }
}

function rejected(code: RejectedFrame["code"], reason: string, id: number | null) {
  const data: RejectedFrame = { code, reason, id };
  return { type: REJECT_EVENT, data };
}

function idOf(data: unknown): number | null {
  const id = (data as { id?: unknown } | null)?.id;
  return typeof id === "number" && Number.isSafeInteger(id) && id >= 0 ? id : null;
}

function configure(config: IPCConfig, socketRoot: string): void {
  config.silent = true;
  config.logPayloads = false;
  config.maxMessageSize = MAX_FRAME_BYTES;
  config.maxPendingBytes = MAX_PENDING_BYTES;
  config.messageTimeout = FRAME_TIMEOUT_MS;
  config.stopRetrying = true;
  config.maxRetries = 0;
  config.socketRoot = socketRoot.endsWith("/") ? socketRoot : `${socketRoot}/`;
  config.secureSocketRoot = true;
  config.readableAll = false;
  config.writableAll = false;
}

/** An endpoint that serves: bad frames are answered, not fatal. */
export function serverModule(socketRoot: string): IPCModule {
  const ipc = new IPCModule();
  configure(ipc.config, socketRoot);
  ipc.config.parser = ResyncParser;
  ipc.config.maxConnections = 256;
  return ipc;
}

/** An endpoint that connects: the stock guarded parser (a peer sending garbage loses the connection). */
export function clientModule(socketRoot: string): IPCModule {
  const ipc = new IPCModule();
  configure(ipc.config, socketRoot);
  ipc.config.parser = "guarded";
  return ipc;
}

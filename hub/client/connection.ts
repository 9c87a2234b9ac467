/**
 * Whether the hub can be reached, as the client last learned it: every call
 * and the inbox stream report here, and listeners (the plugin's status line
 * and widget) hear each change. A failed heartbeat must not be swallowed: a
 * user looking at a stopped hub should see that it is stopped, and since when.
 */
import { TRPCClientError } from "@trpc/client";
import type { ConnectionState, ConnectionStatus } from "../../contract/client.ts";
import { ComsError } from "../../contract/errors.ts";

export type { ConnectionState, ConnectionStatus };

export type ConnectionListener = (status: ConnectionStatus) => void;

export class ConnectionTracker {
  private current: ConnectionStatus;
  private readonly listeners = new Set<ConnectionListener>();

  constructor(now = Date.now()) {
    this.current = {
      state: "connecting",
      since: now,
      lastContactAt: null,
      lastError: null,
      lastErrorAt: null,
    };
  }

  get status(): ConnectionStatus {
    return { ...this.current };
  }

  /** The hub answered. */
  contact(now = Date.now()): void {
    if (this.current.state === "closed") return;
    this.current.lastContactAt = now;
    this.move("connected", now);
  }

  /** The hub could not be reached (network error, timeout, 5xx, stream that cannot reconnect). */
  unreachable(reason: string, now = Date.now()): void {
    if (this.current.state === "closed") return;
    this.current.lastError = reason;
    this.current.lastErrorAt = now;
    this.move("unreachable", now);
  }

  close(now = Date.now()): void {
    this.move("closed", now);
    this.listeners.clear();
  }

  /** Hear every change of state (not every contact); returns the unsubscribe function. */
  onChange(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private move(state: ConnectionState, now: number): void {
    if (this.current.state === state) return;
    this.current.state = state;
    this.current.since = now;
    const snapshot = this.status;
    for (const listener of [...this.listeners]) {
      try {
        listener(snapshot);
      } catch {
        // A listener's failure is its own; the others still hear the change.
      }
    }
  }
}

/** A failure to reach the hub at all (network, timeout, 5xx), as opposed to an answer from it. */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof ComsError) return false;
  if (error instanceof TRPCClientError) {
    // Refused on this side before anything was sent (e.g. input over a bound): the hub was not asked.
    if (error.cause instanceof ComsError) return false;
    const status = (error.data as { httpStatus?: number } | undefined)?.httpStatus;
    return error.data === undefined || error.data === null || (status !== undefined && status >= 502);
  }
  return true;
}

/** A short reason for a failure to reach the hub, with the innermost cause (e.g. ECONNREFUSED). */
export function unreachableReason(error: unknown): string {
  const messages: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 6; depth++) {
    const { message, code } = current as { message?: unknown; code?: unknown };
    const text = typeof code === "string" ? code : typeof message === "string" ? message : undefined;
    if (text && !messages.includes(text)) messages.push(text);
    current = (current as { cause?: unknown }).cause;
  }
  return messages.slice(-2).join(": ") || "the hub did not answer";
}

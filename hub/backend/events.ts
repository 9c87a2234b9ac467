/**
 * What the hub backend tells observers (the operator's dashboard feed and the
 * Prometheus metrics) as things happen. One small synchronous interface, so
 * the backend only calls `emit` at the few places where state changes and
 * knows nothing about who listens.
 */
import type { AgentCard, ErrorCode, Message, Outcome } from "../../contract/schemas.ts";

export type HubEvent =
  /** Registered, changed its card, or its presence (online/stale/offline) moved. */
  | { type: "agent"; card: AgentCard }
  | { type: "agent_left"; id: string }
  /** Accepted and queued for the recipient; `bytes` is what the size limit counts. */
  | { type: "sent"; message: Message; bytes: number }
  /** The recipient acknowledged receipt. */
  | { type: "delivered"; message: Message; at: number }
  /** Final: a reply or an error (the recipient's, or EXPIRED / PEER_GONE from the hub). */
  | {
      type: "settled";
      message: Message;
      outcome: Outcome;
      at: number;
      /** Set when this replaces an earlier final outcome (a reply the hub could not encode for its sender). */
      replaced?: boolean;
    }
  /** A send the hub refused (nothing was queued). */
  | { type: "refused"; from: string; code: ErrorCode };

export type HubListener = (event: HubEvent) => void;

export class HubEvents {
  private readonly listeners = new Set<HubListener>();

  /** Returns the function that stops listening. */
  on(listener: HubListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get active(): boolean {
    return this.listeners.size > 0;
  }

  emit(event: HubEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // An observer's bug must never fail the send, ack or settle that it watches.
      }
    }
  }
}

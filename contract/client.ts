/**
 * The one client shape the plugin, the CLI and scripts use, whatever the
 * transport underneath: the P2P node (peer/) and the hub client (hub/) both
 * implement it.
 */
import type { AgentCard, CardPatch, Message, Outcome, ReplyResult, SendAck, SendInput } from "./schemas.ts";

export type Transport = "p2p" | "hub";

export interface AwaitOptions {
  /** Give up after this long with a TIMEOUT outcome (default: the transport's reply timeout). */
  timeoutMs?: number;
  /** Abort ends the wait with a CANCELLED error; the message itself stays pending. */
  signal?: AbortSignal;
}

/** How a client's link to its server stands (the hub client reports it; a P2P node has none). */
export type ConnectionState = "connecting" | "connected" | "unreachable" | "closed";

export interface ConnectionStatus {
  state: ConnectionState;
  /** When the client entered this state (ms since the epoch). */
  since: number;
  /** Last time the server answered anything (a call or a stream event); null before the first answer. */
  lastContactAt: number | null;
  /** What went wrong last (kept after recovery); null if nothing has yet. */
  lastError: string | null;
  /** When lastError happened. */
  lastErrorAt: number | null;
}

export interface ComsClient {
  readonly transport: Transport;
  /** This agent as the others see it (name may carry a numeric suffix). */
  readonly self: AgentCard;
  list(opts?: { include_explicit?: boolean }): Promise<AgentCard[]>;
  /** Resolves once the recipient (or the hub) has accepted the message. */
  send(input: SendInput): Promise<SendAck>;
  /** Non-blocking: pending, reply or error. */
  get(msgId: string): Promise<Outcome>;
  /** Blocking until the reply, an error, the timeout or the signal. Rejects only on CANCELLED. */
  await(msgId: string, opts?: AwaitOptions): Promise<Outcome>;
  /**
   * Receive prompts addressed to this agent. Every message handed to a
   * handler must later be settled exactly once. If this agent goes away
   * first, the hub hands unsettled messages out again when it re-registers;
   * a P2P sender instead sees PEER_GONE (nothing is lost silently).
   * Returns an unsubscribe function.
   */
  onInbound(handler: (message: Message) => void): () => void;
  /** Answer an inbound message with a reply or an error. */
  settle(msgId: string, result: ReplyResult): Promise<void>;
  /** Update what peers see of this agent (model, context use, queue depth). */
  updateCard(patch: CardPatch): void;
  /** Called when the set of peers or their cards change. Returns an unsubscribe function. */
  onPeers(handler: (peers: AgentCard[]) => void): () => void;
  /** Hub: whether the hub can be reached now, since when, and the last failure. */
  readonly connection?: ConnectionStatus;
  /** Hub: hear each change of `connection`. Returns an unsubscribe function. */
  onConnection?(listener: (status: ConnectionStatus) => void): () => void;
  /** Leave: remove socket and registry entry (P2P) or deregister (hub). */
  close(): Promise<void>;
}

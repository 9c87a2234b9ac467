/**
 * The hub's ComsBackend: agents with credentials and presence, per-recipient
 * queues with TTL, replies routed back to the sender, and one resumable inbox
 * stream per agent. State lives in memory and is written through a HubStore;
 * nothing is acknowledged (send, ack, settle) or streamed before it is durable.
 * This facade wires the parts (state.ts, agents.ts, messages.ts,
 * inbox-streams.ts) and owns the sweep timer and the shutdown.
 */
import type { z } from "zod";
import { toComsError } from "../../contract/errors.ts";
import { HUB_FEATURES, type RegisterAnswer, type RegisterRequest } from "../../contract/features.ts";
import type { Caller, ComsBackend } from "../../contract/router.ts";
import type {
  AgentCard,
  AgentStatus,
  CardPatch,
  HelloInput,
  ListInput,
  Message,
  Outcome,
  SendAck,
  SendInput,
  SettleInput,
} from "../../contract/schemas.ts";
import type { HubStore, MessageState } from "../store/store.ts";
import { Agents } from "./agents.ts";
import { HubEvents } from "./events.ts";
import type { InboxFeed } from "./inbox-feed.ts";
import { InboxStreams } from "./inbox-streams.ts";
import type { HubLimits } from "./limits.ts";
import { Messages } from "./messages.ts";
import { HubState } from "./state.ts";

export { DEFAULT_MAX_AGENTS, DEFAULT_MAX_MESSAGE_BYTES, type HubLimits } from "./limits.ts";

/** A message the hub holds, as an observer starting now sees it; `at` is when it finished. */
export interface HeldMessage {
  message: Message;
  state: MessageState;
  bytes?: number;
  outcome?: Outcome;
  at?: number;
}

export class HubBackend implements ComsBackend {
  readonly project: string;
  readonly limits: HubLimits;
  /** Agents, messages and refusals as they happen, for the dashboard feed and the metrics. */
  readonly events = new HubEvents();
  private readonly state: HubState;
  private readonly streams: InboxStreams;
  private readonly messages: Messages;
  private readonly agents: Agents;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(store: HubStore, project: string, limits: HubLimits) {
    this.project = project;
    this.limits = limits;
    this.state = new HubState(store, project, limits, this.events);
    this.streams = new InboxStreams(
      this.state,
      (item, error) => this.messages.undeliverable(item, error),
      (id) => this.streamGone(id),
    );
    this.messages = new Messages(this.state, this.streams);
    this.agents = new Agents(this.state, this.streams, this.messages);
    const tick = Math.max(
      25,
      Math.min(1000, Math.floor(Math.min(limits.messageTtlMs, limits.staleAfterMs) / 4)),
    );
    this.sweepTimer = setInterval(() => this.sweep(), tick);
    this.sweepTimer.unref();
  }

  get agentCount(): number {
    return this.state.agents.size;
  }

  /** Open inbox streams (connected agents' SSE subscriptions). */
  get openStreams(): number {
    return this.streams.count;
  }

  /** Bytes of every unanswered message the hub holds (bounded by maxQueuedBytes). */
  get queuedBytes(): number {
    return this.state.queuedBytes;
  }

  /** Bytes held for each sender by name (its unanswered messages and untaken replies; bounded by its share). */
  heldBytes(): Array<[string, number]> {
    const held: Array<[string, number]> = [];
    for (const [id, bytes] of this.state.sendersHolding()) {
      const record = this.state.agents.get(id);
      if (record) held.push([record.card.name, bytes]);
    }
    return held;
  }

  /**
   * Every agent (explicit ones too) and every message the hub still holds,
   * unsettled ones and the recently finished ones it keeps for their senders,
   * in the order they were sent, for an observer starting now.
   */
  snapshot(): {
    cards: AgentCard[];
    messages: HeldMessage[];
    queuedBytes: number;
  } {
    const messages: HeldMessage[] = [];
    for (const record of this.state.messages.values()) {
      messages.push({
        message: record.message,
        state: record.state,
        ...(record.bytes !== undefined ? { bytes: record.bytes } : {}),
        ...(record.outcome ? { outcome: record.outcome } : {}),
        ...(record.done_at !== undefined ? { at: record.done_at } : {}),
      });
    }
    return {
      cards: [...this.state.agents.values()].map((record) => this.agents.cardOf(record)),
      messages,
      queuedBytes: this.state.queuedBytes,
    };
  }

  /** Unsettled messages per recipient name (for the queue-depth gauge), read from the queues. */
  queueDepths(): Map<string, number> {
    const byName = new Map<string, number>();
    for (const [id, queue] of this.state.queues) {
      const record = this.state.agents.get(id);
      if (record && queue.size > 0) byName.set(record.card.name, queue.size);
    }
    return byName;
  }

  /** Agents by presence status now (for the connected-agents gauge). */
  statusCounts(now = Date.now()): Record<AgentStatus, number> {
    const counts = { online: 0, stale: 0, offline: 0 };
    for (const record of this.state.agents.values()) counts[this.state.statusOf(record, now)] += 1;
    return counts;
  }

  /** The verified caller for an agent credential, or null. */
  authenticate(id: string, token: string): Caller | null {
    return this.agents.authenticate(id, token);
  }

  async register(input: z.output<typeof RegisterRequest>): Promise<z.output<typeof RegisterAnswer>> {
    return { ...(await this.agents.register(input)), features: HUB_FEATURES };
  }

  hello(input: z.output<typeof HelloInput>): Promise<AgentCard> {
    return this.agents.hello(input);
  }

  heartbeat(caller: Caller, patch: CardPatch): Promise<AgentCard> {
    return this.agents.heartbeat(caller, patch);
  }

  async leave(caller: Caller): Promise<void> {
    this.agents.remove(caller.id, "left the hub");
    await this.state.store.flush();
  }

  list(caller: Caller | null, input: z.output<typeof ListInput>): Promise<AgentCard[]> {
    return this.agents.list(caller, input);
  }

  card(caller: Caller | null): Promise<AgentCard> {
    return this.agents.card(caller);
  }

  /** A refusal is counted (the "refused" event) and rejects; nothing was queued then. */
  send(caller: Caller, input: z.output<typeof SendInput>): Promise<SendAck> {
    try {
      return this.messages.accept(caller, input);
    } catch (error) {
      this.events.emit({ type: "refused", from: caller.name, code: toComsError(error).code });
      return Promise.reject(error);
    }
  }

  get(caller: Caller, msgId: string): Promise<Outcome> {
    return this.messages.get(caller, msgId);
  }

  watch(caller: Caller, msgId: string, signal: AbortSignal | undefined): AsyncIterable<Outcome> {
    return this.messages.watch(caller, msgId, signal);
  }

  inbox(
    caller: Caller,
    lastEventId: string | null,
    signal: AbortSignal | undefined,
    opts: { peers: boolean } = { peers: true },
  ): InboxFeed {
    this.state.agentOf(caller);
    return this.streams.open(caller.id, lastEventId, signal, opts.peers);
  }

  ack(caller: Caller, msgIds: string[]): Promise<void> {
    try {
      return this.messages.ack(caller, msgIds);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  settle(caller: Caller, input: z.output<typeof SettleInput>): Promise<void> {
    try {
      return this.messages.settle(caller, input);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The agent's last inbox stream closed and it opened none again within the
   * grace: a crashed process. What it held ends PEER_GONE now, not once its
   * presence lapses.
   */
  private streamGone(id: string): void {
    const record = this.state.agents.get(id);
    if (!record || this.state.closed || this.streams.has(id)) return;
    this.messages.recipientGone(
      id,
      `${record.card.name} is gone (its inbox stream closed and it did not open one again within ${this.state.limits.streamGraceMs} ms)`,
    );
  }

  /** Expire messages, move presence along, purge tombstones and long-gone agents. */
  sweep(now = Date.now()): void {
    this.messages.sweep(now);
    this.agents.sweep(now);
  }

  /** Graceful stop: end every stream and write what is pending. */
  async close(): Promise<void> {
    if (this.state.closed) return;
    this.state.closed = true;
    clearInterval(this.sweepTimer);
    this.agents.close();
    this.streams.endAll();
    this.messages.wakeAll();
    await this.state.store.flush().catch(() => {});
    this.state.store.close();
  }
}

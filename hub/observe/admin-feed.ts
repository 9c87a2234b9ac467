/**
 * The admin.watch stream: keeps the operator's picture of the hub (agents,
 * the latest messages with their state) from the backend's events, and sends
 * each subscriber a snapshot, then the changes in batches a few times a
 * second, so 100 messages a second cost a handful of SSE events, not hundreds.
 * Only while someone watches: the first subscriber builds the picture from
 * the hub's state (its agents, queues and the finished messages it still
 * keeps), the last one to leave drops it, so an unwatched hub does no work
 * per message here.
 */
import type { AdminBackend, AdminEvent, HubInfo, MessageRow } from "../../contract/admin.ts";
import type { AgentCard, Message, Outcome } from "../../contract/schemas.ts";
import { AsyncQueue } from "../backend/async-queue.ts";
import type { HubBackend } from "../backend/backend.ts";
import type { HubEvent } from "../backend/events.ts";

export interface AdminFeedOptions {
  /** Send prompt and reply previews (off: sizes, states and timings only). */
  content: boolean;
  /** Characters of prompt/reply preview. */
  previewChars?: number;
  /** Settled messages remembered for new subscribers (unsettled ones are always kept). */
  historyRows?: number;
  /** How often changes are sent. */
  batchMs?: number;
  /** A subscriber this many batches behind is dropped (its EventSource reconnects to a fresh snapshot). */
  maxBacklog?: number;
  /** Most messages in a snapshot (the newest), so a hub with huge queues does not send megabytes at once. */
  snapshotRows?: number;
}

export class AdminFeed implements AdminBackend {
  private readonly backend: HubBackend;
  private readonly info: HubInfo;
  private readonly previewChars: number;
  private readonly historyRows: number;
  private readonly batchMs: number;
  private readonly maxBacklog: number;
  private readonly snapshotRows: number;
  private readonly agents = new Map<string, AgentCard>();
  /** Insertion-ordered: the oldest settled rows go first when over the cap. */
  private readonly rows = new Map<string, MessageRow>();
  private settledCount = 0;
  /** Recipient id → unsettled message count (the queue depth shown on cards). */
  private readonly depth = new Map<string, number>();
  private readonly dirtyAgents = new Set<string>();
  private readonly removed = new Set<string>();
  private readonly dirtyRows = new Set<string>();
  private readonly subscribers = new Set<AsyncQueue<AdminEvent>>();
  private timer: NodeJS.Timeout | undefined;
  /** Stops listening to the backend; set while someone watches. */
  private stop: (() => void) | undefined;

  constructor(backend: HubBackend, opts: AdminFeedOptions) {
    this.backend = backend;
    this.info = { project: backend.project, content: opts.content, started_at: Date.now() };
    this.previewChars = opts.previewChars ?? 160;
    this.historyRows = opts.historyRows ?? 500;
    this.batchMs = opts.batchMs ?? 250;
    this.maxBacklog = opts.maxBacklog ?? 40;
    this.snapshotRows = opts.snapshotRows ?? 2000;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Whether the feed follows the backend now (someone watches). */
  get following(): boolean {
    return this.stop !== undefined;
  }

  /** The first subscriber came: listen, then read the state (both synchronous, so nothing slips between). */
  private follow(): void {
    this.stop = this.backend.events.on((event) => this.apply(event));
    const { cards, messages } = this.backend.snapshot();
    for (const card of cards) this.agents.set(card.id, card);
    // Only the newest finished ones are kept (historyRows); the older ones are not built at all.
    let skip = -this.historyRows;
    for (const { state } of messages) if (state === "final") skip += 1;
    for (const { message, state, bytes, outcome, at } of messages) {
      if (state === "final" && skip-- > 0) continue;
      this.addRow(message, bytes ?? Buffer.byteLength(message.prompt));
      if (state === "final") {
        // A finished message the hub still keeps: its prompt is gone, its outcome is there.
        if (outcome) this.settleRow(message.msg_id, outcome, at ?? message.created_at);
        this.settledCount += 1;
      } else {
        this.bumpDepth(message.to_id, 1);
        if (state === "acked") this.patchRow(message.msg_id, { state: "delivered" });
      }
    }
    this.trim();
    this.clearDirty();
  }

  /** The last subscriber left: stop following and forget the picture. */
  private unfollow(): void {
    this.stop?.();
    this.stop = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.agents.clear();
    this.rows.clear();
    this.depth.clear();
    this.settledCount = 0;
    this.clearDirty();
  }

  async *watch(signal: AbortSignal | undefined): AsyncIterable<AdminEvent> {
    const queue = new AsyncQueue<AdminEvent>();
    if (!this.stop) this.follow();
    this.subscribers.add(queue);
    const onAbort = () => queue.end();
    signal?.addEventListener("abort", onAbort);
    try {
      yield {
        kind: "snapshot",
        hub: this.info,
        agents: [...this.agents.values()].map((card) => this.withDepth(card)),
        messages: [...this.rows.values()].slice(-this.snapshotRows),
        at: Date.now(),
      };
      while (true) {
        const event = await queue.next();
        if (event === undefined) return;
        yield event;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.subscribers.delete(queue);
      if (this.subscribers.size === 0) this.unfollow();
    }
  }

  close(): void {
    for (const queue of this.subscribers) queue.end();
    this.subscribers.clear();
    this.unfollow();
  }

  private apply(event: HubEvent): void {
    switch (event.type) {
      case "agent":
        this.agents.set(event.card.id, event.card);
        this.removed.delete(event.card.id);
        this.dirtyAgents.add(event.card.id);
        break;
      case "agent_left":
        this.agents.delete(event.id);
        this.depth.delete(event.id);
        this.dirtyAgents.delete(event.id);
        this.removed.add(event.id);
        break;
      case "sent":
        this.addRow(event.message, event.bytes);
        this.bumpDepth(event.message.to_id, 1);
        break;
      case "delivered":
        this.patchRow(event.message.msg_id, { state: "delivered", delivered_at: event.at });
        break;
      case "settled":
        this.settle(event.message, event.outcome, event.at);
        break;
      case "refused":
        return;
    }
    this.schedule();
  }

  private addRow(message: Message, bytes: number): void {
    const row: MessageRow = {
      msg_id: message.msg_id,
      from: message.from,
      from_id: message.from_id,
      to: message.to,
      to_id: message.to_id,
      hops: message.hops,
      state: "queued",
      bytes,
      created_at: message.created_at,
      ...(message.conversation_id ? { conversation_id: message.conversation_id } : {}),
      ...(message.chain_id ? { chain_id: message.chain_id } : {}),
      // A finished message's tombstone has no prompt left to preview.
      ...(this.info.content && message.prompt !== "" ? { prompt_preview: this.preview(message.prompt) } : {}),
    };
    this.rows.set(row.msg_id, row);
    this.dirtyRows.add(row.msg_id);
  }

  private settle(message: Message, outcome: Outcome, at: number): void {
    const row = this.rows.get(message.msg_id);
    // Settled messages only count when the row is known: its queue-depth share was counted on "sent".
    if (row && (row.state === "queued" || row.state === "delivered")) {
      this.bumpDepth(message.to_id, -1);
      this.settledCount += 1;
    }
    if (!row) return;
    this.settleRow(message.msg_id, outcome, at);
    this.trim();
  }

  private settleRow(msgId: string, outcome: Outcome, at: number): void {
    if (outcome.state === "reply") {
      const reply = outcome.text;
      this.patchRow(msgId, {
        state: "replied",
        settled_at: at,
        reply_bytes: Buffer.byteLength(reply) + (outcome.value === undefined ? 0 : jsonBytes(outcome.value)),
        ...(this.info.content ? { reply_preview: this.preview(reply) } : {}),
      });
    } else if (outcome.state === "error") {
      this.patchRow(msgId, {
        state: "error",
        code: outcome.code,
        settled_at: at,
        ...(this.info.content ? { reply_preview: this.preview(outcome.message) } : {}),
      });
    }
  }

  private patchRow(msgId: string, patch: Partial<MessageRow>): void {
    const row = this.rows.get(msgId);
    if (!row) return;
    Object.assign(row, patch);
    this.dirtyRows.add(msgId);
  }

  /** Forget the oldest settled rows past the history cap (new subscribers see the latest ones). */
  private trim(): void {
    if (this.settledCount <= this.historyRows) return;
    for (const [id, row] of this.rows) {
      if (this.settledCount <= this.historyRows) break;
      if (row.state === "replied" || row.state === "error") {
        this.rows.delete(id);
        this.settledCount -= 1;
      }
    }
  }

  private bumpDepth(agentId: string, by: number): void {
    const n = Math.max(0, (this.depth.get(agentId) ?? 0) + by);
    if (n === 0) this.depth.delete(agentId);
    else this.depth.set(agentId, n);
    if (this.agents.has(agentId)) this.dirtyAgents.add(agentId);
  }

  private withDepth(card: AgentCard): AgentCard {
    return { ...card, queue_depth: this.depth.get(card.id) ?? 0 };
  }

  private preview(text: string): string {
    return text.length <= this.previewChars ? text : `${text.slice(0, this.previewChars)}…`;
  }

  private schedule(): void {
    if (this.timer || this.subscribers.size === 0) {
      if (this.subscribers.size === 0) this.clearDirty();
      return;
    }
    this.timer = setTimeout(() => this.flush(), this.batchMs);
    this.timer.unref();
  }

  private clearDirty(): void {
    this.dirtyAgents.clear();
    this.dirtyRows.clear();
    this.removed.clear();
  }

  private flush(): void {
    this.timer = undefined;
    const agents: AgentCard[] = [];
    for (const id of this.dirtyAgents) {
      const card = this.agents.get(id);
      if (card) agents.push(this.withDepth(card));
    }
    const messages: MessageRow[] = [];
    for (const id of this.dirtyRows) {
      const row = this.rows.get(id);
      // Copies: a row changed again later must not alter an event already queued for a slow reader.
      if (row) messages.push({ ...row });
    }
    const removed = [...this.removed];
    this.clearDirty();
    if (agents.length === 0 && messages.length === 0 && removed.length === 0) return;
    const event: AdminEvent = { kind: "changes", agents, removed, messages, at: Date.now() };
    for (const queue of this.subscribers) {
      if (queue.size >= this.maxBacklog) queue.end();
      else queue.push(event);
    }
  }
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? "");
}

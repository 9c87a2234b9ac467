/**
 * The hub's ComsBackend: agents with credentials and presence, per-recipient
 * queues with TTL, replies routed back to the sender, and one resumable inbox
 * stream per agent. State lives in memory and is written through a HubStore;
 * nothing is acknowledged (send, ack, settle) or streamed before it is durable.
 */
import type { z } from "zod";
import { comsError, toComsError } from "../../contract/errors.ts";
import { ulid } from "../../contract/ids.ts";
import type { Caller, ComsBackend, InboxItem } from "../../contract/router.ts";
import type {
  AgentCard,
  AgentStatus,
  CardPatch,
  HelloInput,
  ListInput,
  Message,
  Outcome,
  RegisterInput,
  RegisterResult,
  SendAck,
  SendInput,
  SettleInput,
} from "../../contract/schemas.ts";
import { hashToken, newToken, sameDigest } from "../../lib/secrets.ts";
import type { AgentRecord, HubStore, MessageRecord } from "../store/store.ts";
import { AsyncQueue } from "./async-queue.ts";
import { HubEvents } from "./events.ts";
import { InboxFeed, type InboxFeedDeps, type QueueItem } from "./inbox-feed.ts";
import { SendRateLimit } from "./rate-limit.ts";

export interface HubLimits {
  maxHops: number;
  messageTtlMs: number;
  staleAfterMs: number;
  offlineAfterMs: number;
  maxMessageBytes: number;
  maxAgents: number;
  /** Sustained new messages per second per sending agent, burst twice that; 0 or absent = unlimited. */
  maxSendsPerSec?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
export const DEFAULT_MAX_AGENTS = 4096;
/** How long a reply the sender has already taken stays readable by get(). */
const TAKEN_RETENTION_MS = 60_000;

export class HubBackend implements ComsBackend {
  readonly project: string;
  readonly limits: HubLimits;
  private readonly store: HubStore;
  private readonly agents = new Map<string, AgentRecord>();
  private readonly byName = new Map<string, string>();
  private readonly messages = new Map<string, MessageRecord>();
  /** Recipient id → ids of its unsettled messages (its queue). */
  private readonly queues = new Map<string, Set<string>>();
  /** Sender id → ids of final messages whose outcome it has not taken yet. */
  private readonly untaken = new Map<string, Set<string>>();
  private readonly streams = new Map<string, Set<InboxFeed>>();
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly lastStatus = new Map<string, AgentStatus>();
  private seq: number;
  private durableSeq: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private peersTimer: NodeJS.Timeout | undefined;
  /** Agents whose card or presence changed, and agents that left, since the last peers event. */
  private readonly dirtyPeers = new Set<string>();
  private readonly removedPeers = new Set<string>();
  private closed = false;
  private readonly sendRate: SendRateLimit;
  /** Agents, messages and refusals as they happen, for the dashboard feed and the metrics. */
  readonly events = new HubEvents();

  constructor(store: HubStore, project: string, limits: HubLimits) {
    this.sendRate = new SendRateLimit(limits.maxSendsPerSec ?? 0);
    this.store = store;
    this.project = project;
    this.limits = limits;
    for (const record of store.loadAgents()) {
      this.agents.set(record.card.id, record);
      this.byName.set(record.card.name, record.card.id);
    }
    for (const record of store.loadMessages()) {
      this.messages.set(record.message.msg_id, record);
      if (record.state !== "final") this.setOf(this.queues, record.message.to_id).add(record.message.msg_id);
      else if (!record.outcome_taken)
        this.setOf(this.untaken, record.message.from_id).add(record.message.msg_id);
    }
    this.seq = store.lastSeq;
    this.durableSeq = this.seq;
    // Agents restored from disk have not been heard from since: their presence starts from now.
    const now = Date.now();
    for (const record of this.agents.values()) record.last_seen = Math.max(record.last_seen, now);
    const tick = Math.max(
      25,
      Math.min(1000, Math.floor(Math.min(limits.messageTtlMs, limits.staleAfterMs) / 4)),
    );
    this.sweepTimer = setInterval(() => this.sweep(), tick);
    this.sweepTimer.unref();
  }

  get agentCount(): number {
    return this.agents.size;
  }

  /** Open inbox streams (connected agents' SSE subscriptions). */
  get openStreams(): number {
    let n = 0;
    for (const set of this.streams.values()) n += set.size;
    return n;
  }

  /** Every agent (explicit ones too) and every unsettled message, for an observer starting now. */
  snapshot(): { cards: AgentCard[]; pending: Array<{ message: Message; delivered: boolean }> } {
    const pending: Array<{ message: Message; delivered: boolean }> = [];
    for (const record of this.messages.values()) {
      if (record.state !== "final")
        pending.push({ message: record.message, delivered: record.state === "acked" });
    }
    return { cards: [...this.agents.values()].map((record) => this.cardOf(record)), pending };
  }

  /** The verified caller for an agent credential, or null. */
  authenticate(id: string, token: string): Caller | null {
    const record = this.agents.get(id);
    if (!record) return null;
    if (!sameDigest(hashToken(token), Buffer.from(record.token_hash, "hex"))) return null;
    return { id, name: record.card.name };
  }

  async register(input: z.output<typeof RegisterInput>): Promise<z.output<typeof RegisterResult>> {
    this.assertOpen();
    const now = Date.now();
    if (input.resume) {
      const existing = this.agents.get(input.resume.id);
      if (existing) {
        if (!this.authenticate(input.resume.id, input.resume.agent_token)) {
          throw comsError("UNAUTHORIZED", "resume refused: the agent credential does not match");
        }
        existing.card = {
          ...existing.card,
          purpose: input.purpose ?? existing.card.purpose,
          model: input.model ?? existing.card.model,
          color: input.color ?? existing.card.color,
          explicit: input.explicit ?? existing.card.explicit,
        };
        existing.last_seen = now;
        this.store.putAgent(existing);
        this.peersChanged(existing.card.id);
        await this.store.flush();
        return { card: this.cardOf(existing), agent_token: input.resume.agent_token };
      }
    }
    if (this.agents.size >= this.limits.maxAgents) {
      throw comsError("BAD_INPUT", `the hub is full: it allows ${this.limits.maxAgents} agents`);
    }
    const agentToken = input.resume?.agent_token ?? newToken();
    const card: AgentCard = {
      id: input.resume?.id ?? ulid(now),
      name: this.claimName(input.name),
      purpose: input.purpose ?? "",
      model: input.model ?? "",
      ...(input.color ? { color: input.color } : {}),
      explicit: input.explicit ?? false,
      project: this.project,
      context_used_pct: null,
      queue_depth: 0,
      status: "online",
      started_at: now,
    };
    const record: AgentRecord = { card, token_hash: hashToken(agentToken).toString("hex"), last_seen: now };
    this.agents.set(card.id, record);
    this.byName.set(card.name, card.id);
    this.lastStatus.set(card.id, "online");
    this.store.putAgent(record);
    this.peersChanged(card.id);
    await this.store.flush();
    return { card: this.cardOf(record), agent_token: agentToken };
  }

  /** A free name: the requested one, else with the lowest free numeric suffix (coder → coder2). */
  private claimName(requested: string): string {
    const holder = this.byName.get(requested);
    if (holder === undefined) return requested;
    const record = this.agents.get(holder);
    // A crashed session's name is handed to whoever asks for it next.
    if (record && this.statusOf(record) === "offline") {
      this.removeAgent(holder, "was replaced by a new agent with the same name");
      return requested;
    }
    for (let n = 2; ; n++) {
      const suffix = String(n);
      const name = requested.slice(0, 64 - suffix.length) + suffix;
      if (!this.byName.has(name)) return name;
    }
  }

  async hello(input: z.output<typeof HelloInput>): Promise<AgentCard> {
    const caller = this.authenticate(input.id, input.agent_token);
    if (!caller) throw comsError("UNAUTHORIZED", "unknown agent or wrong agent credential");
    return this.cardOf(this.agentOf(caller));
  }

  async heartbeat(caller: Caller, patch: CardPatch): Promise<AgentCard> {
    const record = this.agentOf(caller);
    const before = this.statusOf(record);
    const card = record.card;
    const changed =
      (patch.model !== undefined && patch.model !== card.model) ||
      (patch.context_used_pct !== undefined && patch.context_used_pct !== card.context_used_pct);
    if (patch.model !== undefined) card.model = patch.model;
    if (patch.context_used_pct !== undefined) card.context_used_pct = patch.context_used_pct;
    if (patch.queue_depth !== undefined) card.queue_depth = patch.queue_depth;
    record.last_seen = Date.now();
    this.lastStatus.set(card.id, "online");
    if (changed || before !== "online") this.peersChanged(card.id);
    // last_seen alone is not worth a write: a restarted hub starts every agent's presence from now.
    if (changed) this.store.putAgent(record);
    return this.cardOf(record);
  }

  async leave(caller: Caller): Promise<void> {
    this.removeAgent(caller.id, "left the hub");
    await this.store.flush();
  }

  private removeAgent(id: string, why: string): void {
    const record = this.agents.get(id);
    if (!record) return;
    this.agents.delete(id);
    this.sendRate.forget(id);
    if (this.byName.get(record.card.name) === id) this.byName.delete(record.card.name);
    this.lastStatus.delete(id);
    this.store.deleteAgent(id);
    for (const msgId of [...(this.queues.get(id) ?? [])]) {
      const message = this.messages.get(msgId);
      if (message) this.finish(message, this.errorOutcome(msgId, "PEER_GONE", `${record.card.name} ${why}`));
    }
    this.queues.delete(id);
    // Nobody is left to read the outcomes of what it sent.
    for (const msgId of this.untaken.get(id) ?? []) this.dropMessage(msgId);
    this.untaken.delete(id);
    for (const stream of this.streams.get(id) ?? []) stream.end();
    this.streams.delete(id);
    this.peersChanged(id, true);
  }

  async list(caller: Caller | null, input: z.output<typeof ListInput>): Promise<AgentCard[]> {
    if (!caller) throw comsError("UNAUTHORIZED", "identify first: listing needs a registered agent");
    const cards: AgentCard[] = [];
    for (const record of this.agents.values()) {
      if (record.card.id === caller.id) continue;
      if (record.card.explicit && !input.include_explicit) continue;
      cards.push(this.cardOf(record));
    }
    return cards;
  }

  async card(caller: Caller | null): Promise<AgentCard> {
    if (!caller) throw comsError("UNAUTHORIZED", "identify first: the hub has no card of its own");
    return this.cardOf(this.agentOf(caller));
  }

  async send(caller: Caller, input: z.output<typeof SendInput>): Promise<SendAck> {
    try {
      return await this.accept(caller, input);
    } catch (error) {
      this.events.emit({ type: "refused", from: caller.name, code: toComsError(error).code });
      throw error;
    }
  }

  private async accept(caller: Caller, input: z.output<typeof SendInput>): Promise<SendAck> {
    this.assertOpen();
    const sender = this.agentOf(caller);
    const bytes = Buffer.byteLength(input.prompt) + jsonBytes(input.response_schema);
    if (bytes > this.limits.maxMessageBytes) {
      throw comsError(
        "TOO_LARGE",
        `message is ${bytes} bytes; this hub accepts at most ${this.limits.maxMessageBytes}`,
      );
    }
    const hops = input.hops + 1;
    if (hops > this.limits.maxHops) {
      throw comsError(
        "HOP_LIMIT",
        `hop limit reached (${input.hops} hops taken, limit ${this.limits.maxHops})`,
      );
    }
    if (input.msg_id) {
      const previous = this.messages.get(input.msg_id);
      if (previous) {
        if (previous.message.from_id !== caller.id) throw comsError("BAD_INPUT", "msg_id already in use");
        await this.store.flush();
        return this.ackOf(previous);
      }
    }
    const toId = this.byName.get(input.to);
    const recipient = toId === undefined ? undefined : this.agents.get(toId);
    if (!recipient) throw comsError("UNKNOWN_PEER", `no agent named ${input.to} on this hub`);
    if (recipient.card.id === caller.id) throw comsError("BAD_INPUT", "an agent cannot message itself");
    // Checked last, so only a message that would be stored spends a token; a retried msg_id above is free.
    const waitMs = this.sendRate.take(caller.id);
    if (waitMs > 0) {
      throw comsError(
        "RATE_LIMITED",
        `too many sends: this hub allows ${this.limits.maxSendsPerSec}/s per agent; retry in ${waitMs} ms (nothing was sent)`,
      );
    }
    const now = Date.now();
    const message: Message = {
      msg_id: input.msg_id ?? ulid(now),
      from: sender.card.name,
      from_id: sender.card.id,
      to: recipient.card.name,
      to_id: recipient.card.id,
      prompt: input.prompt,
      hops,
      ...(input.conversation_id ? { conversation_id: input.conversation_id } : {}),
      ...(input.response_schema ? { response_schema: input.response_schema } : {}),
      ...(input.chain_id ? { chain_id: input.chain_id } : {}),
      created_at: now,
    };
    const record: MessageRecord = {
      message,
      state: "queued",
      expires_at: now + this.limits.messageTtlMs,
      deliver_seq: this.nextSeq(),
    };
    this.messages.set(message.msg_id, record);
    this.setOf(this.queues, recipient.card.id).add(message.msg_id);
    this.store.putMessage(record);
    this.publish(recipient.card.id, { seq: record.deliver_seq, event: { kind: "message", message } });
    this.events.emit({ type: "sent", message, bytes });
    await this.store.flush();
    return this.ackOf(record);
  }

  private ackOf(record: MessageRecord): SendAck {
    return {
      msg_id: record.message.msg_id,
      to: record.message.to,
      to_id: record.message.to_id,
      accepted_at: record.message.created_at,
      queue_depth: this.queues.get(record.message.to_id)?.size ?? 0,
    };
  }

  async get(caller: Caller, msgId: string): Promise<Outcome> {
    const record = this.messages.get(msgId);
    if (!record)
      return this.errorOutcome(msgId, "EXPIRED", "no such message on this hub (expired or purged)");
    if (record.message.from_id !== caller.id) {
      throw comsError("UNAUTHORIZED", "only the sender of a message can read its outcome");
    }
    return this.outcomeOf(record);
  }

  private outcomeOf(record: MessageRecord): Outcome {
    return (
      record.outcome ?? {
        state: "pending",
        msg_id: record.message.msg_id,
        delivered: record.state === "acked",
      }
    );
  }

  async *watch(caller: Caller, msgId: string, signal: AbortSignal | undefined): AsyncIterable<Outcome> {
    const first = await this.get(caller, msgId);
    yield first;
    if (first.state !== "pending") return;
    let last = JSON.stringify(first);
    const queue = new AsyncQueue<true>();
    const wake = () => queue.push(true);
    this.setOf(this.watchers, msgId).add(wake);
    const onAbort = () => queue.end();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!this.closed) {
        const record = this.messages.get(msgId);
        const outcome = record
          ? this.outcomeOf(record)
          : this.errorOutcome(msgId, "EXPIRED", "no such message on this hub (expired or purged)");
        const text = JSON.stringify(outcome);
        if (text !== last) {
          last = text;
          yield outcome;
        }
        if (outcome.state !== "pending") return;
        if ((await queue.next()) === undefined) return;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.watchers.get(msgId)?.delete(wake);
      if (this.watchers.get(msgId)?.size === 0) this.watchers.delete(msgId);
    }
  }

  inbox(caller: Caller, lastEventId: string | null, signal: AbortSignal | undefined): InboxFeed {
    this.agentOf(caller);
    // Subscribe and compute the replay in one synchronous step: nothing can slip between them.
    const after = this.parseEventId(lastEventId);
    const replay: QueueItem[] = [];
    for (const msgId of this.queues.get(caller.id) ?? []) {
      const record = this.messages.get(msgId);
      if (record && (after === null || record.deliver_seq > after)) {
        replay.push({ seq: record.deliver_seq, event: { kind: "message", message: record.message }, msgId });
      }
    }
    for (const msgId of this.untaken.get(caller.id) ?? []) {
      const record = this.messages.get(msgId);
      const seq = record?.outcome_seq ?? 0;
      if (record?.outcome && (after === null || seq > after)) {
        replay.push({ seq, event: { kind: "outcome", outcome: record.outcome }, msgId });
      }
    }
    replay.sort((a, b) => a.seq - b.seq);
    const feed = new InboxFeed(this.feedDeps(caller.id), replay);
    this.setOf(this.streams, caller.id).add(feed);
    if (signal) {
      if (signal.aborted) feed.detach();
      else signal.addEventListener("abort", () => feed.detach(), { once: true });
    }
    return feed;
  }

  /** What an inbox feed needs from the backend (shared by all of one agent's feeds). */
  private feedDeps(agentId: string): InboxFeedDeps {
    return {
      isDurable: (seq) => seq <= this.durableSeq,
      durable: (seq) => this.durable(seq),
      stale: (item) =>
        item.event.kind === "message" && this.messages.get(item.msgId ?? "")?.state === "final",
      toItem: (item) => this.itemOf(item),
      release: (feed) => {
        const set = this.streams.get(agentId);
        set?.delete(feed);
        if (set?.size === 0) this.streams.delete(agentId);
      },
    };
  }

  /** Nothing leaves the hub before it is on disk: a restart never takes back an event. */
  private async durable(seq: number): Promise<void> {
    if (seq <= this.durableSeq) return;
    const target = this.seq;
    await this.store.flush();
    this.durableSeq = Math.max(this.durableSeq, target);
  }

  private itemOf(item: QueueItem): InboxItem {
    return { id: `${this.store.epoch}.${item.seq}`, event: item.event };
  }

  /** The sequence number after which to resume, or null for a full replay (new stream, other epoch). */
  private parseEventId(id: string | null): number | null {
    if (!id) return null;
    const [epoch, seq] = id.split(".");
    const n = Number(seq);
    if (epoch !== this.store.epoch || !Number.isSafeInteger(n) || n < 0) return null;
    return n;
  }

  async ack(caller: Caller, msgIds: string[]): Promise<void> {
    for (const msgId of msgIds) {
      const record = this.messages.get(msgId);
      if (!record) continue;
      if (record.message.to_id === caller.id && record.state === "queued") {
        record.state = "acked";
        this.store.putMessage(record);
        this.notify(msgId);
        this.events.emit({ type: "delivered", message: record.message, at: Date.now() });
      } else if (record.message.from_id === caller.id && record.state === "final" && !record.outcome_taken) {
        record.outcome_taken = true;
        record.done_at = Date.now();
        this.untaken.get(caller.id)?.delete(msgId);
        this.store.putMessage(record);
      }
    }
    await this.store.flush();
  }

  async settle(caller: Caller, input: z.output<typeof SettleInput>): Promise<void> {
    const record = this.messages.get(input.msg_id);
    if (!record) throw comsError("EXPIRED", "no such message on this hub (expired or purged)");
    if (record.message.to_id !== caller.id) {
      throw comsError("UNAUTHORIZED", "only the recipient of a message can answer it");
    }
    if (record.state === "final") {
      if (record.outcome?.state === "error" && record.outcome.code === "EXPIRED") {
        throw comsError("EXPIRED", record.outcome.message);
      }
      throw comsError("BAD_INPUT", "this message has already been answered");
    }
    const result = input.result;
    if (result.ok) {
      const bytes = Buffer.byteLength(result.text) + jsonBytes(result.value);
      if (bytes > this.limits.maxMessageBytes) {
        throw comsError(
          "TOO_LARGE",
          `reply is ${bytes} bytes; this hub accepts at most ${this.limits.maxMessageBytes}`,
        );
      }
    }
    const outcome: Outcome = result.ok
      ? {
          state: "reply",
          msg_id: input.msg_id,
          from: record.message.to,
          text: result.text,
          ...(result.value !== undefined ? { value: result.value } : {}),
          replied_at: Date.now(),
        }
      : { state: "error", msg_id: input.msg_id, code: result.code, message: result.message };
    this.finish(record, outcome);
    await this.store.flush();
  }

  /** Make a message final and route its outcome to the sender. */
  private finish(record: MessageRecord, outcome: Outcome): void {
    const msg = record.message;
    record.state = "final";
    record.outcome = outcome;
    record.outcome_seq = this.nextSeq();
    record.done_at = Date.now();
    // A tombstone does not need the prompt any more.
    record.message = { ...msg, prompt: "" };
    this.queues.get(msg.to_id)?.delete(msg.msg_id);
    if (this.agents.has(msg.from_id)) {
      this.setOf(this.untaken, msg.from_id).add(msg.msg_id);
      this.publish(msg.from_id, {
        seq: record.outcome_seq,
        event: { kind: "outcome", outcome },
        msgId: msg.msg_id,
      });
    } else {
      record.outcome_taken = true;
    }
    this.store.putMessage(record);
    this.notify(msg.msg_id);
    this.events.emit({ type: "settled", message: msg, outcome, at: record.done_at });
  }

  private errorOutcome(msgId: string, code: "EXPIRED" | "PEER_GONE", message: string): Outcome {
    return { state: "error", msg_id: msgId, code, message };
  }

  private dropMessage(msgId: string): void {
    const record = this.messages.get(msgId);
    if (!record) return;
    this.messages.delete(msgId);
    this.queues.get(record.message.to_id)?.delete(msgId);
    this.untaken.get(record.message.from_id)?.delete(msgId);
    this.store.deleteMessage(msgId);
  }

  private nextSeq(): number {
    this.seq += 1;
    this.store.setLastSeq(this.seq);
    return this.seq;
  }

  private publish(agentId: string, item: QueueItem): void {
    for (const stream of this.streams.get(agentId) ?? []) stream.push(item);
  }

  private notify(msgId: string): void {
    for (const wake of this.watchers.get(msgId) ?? []) wake();
  }

  /** Expire messages, move presence along, purge tombstones and long-gone agents. */
  sweep(now = Date.now()): void {
    for (const record of this.messages.values()) {
      if (record.state !== "final") {
        if (record.expires_at <= now) {
          const ttl = this.limits.messageTtlMs;
          this.finish(
            record,
            this.errorOutcome(
              record.message.msg_id,
              "EXPIRED",
              `no reply within the message TTL (${ttl} ms)`,
            ),
          );
        }
      } else if (
        (record.outcome_taken && (record.done_at ?? 0) + TAKEN_RETENTION_MS <= now) ||
        (record.done_at ?? 0) + this.limits.messageTtlMs <= now
      ) {
        this.dropMessage(record.message.msg_id);
      }
    }
    for (const record of [...this.agents.values()]) {
      const status = this.statusOf(record, now);
      if (status !== (this.lastStatus.get(record.card.id) ?? "online")) {
        this.lastStatus.set(record.card.id, status);
        this.peersChanged(record.card.id);
      }
      const goneFor = now - record.last_seen - this.limits.offlineAfterMs;
      if (
        status === "offline" &&
        goneFor > this.limits.messageTtlMs &&
        !this.queues.get(record.card.id)?.size
      ) {
        this.removeAgent(record.card.id, "has been offline too long");
      }
    }
  }

  private statusOf(record: AgentRecord, now = Date.now()): AgentStatus {
    const silent = now - record.last_seen;
    if (silent >= this.limits.offlineAfterMs) return "offline";
    if (silent >= this.limits.staleAfterMs) return "stale";
    return "online";
  }

  private cardOf(record: AgentRecord): AgentCard {
    return {
      ...record.card,
      status: this.statusOf(record),
      queue_depth: this.queues.get(record.card.id)?.size ?? 0,
    };
  }

  /**
   * Tell every connected agent which cards changed and who left. Coalesced
   * over a short window, and sent as a delta, so a crowd registering at once
   * costs a few small broadcasts instead of one full list per agent per agent.
   */
  private peersChanged(id: string, removed = false): void {
    if (this.events.active) {
      const record = this.agents.get(id);
      this.events.emit(
        removed || !record ? { type: "agent_left", id } : { type: "agent", card: this.cardOf(record) },
      );
    }
    if (removed) {
      this.removedPeers.add(id);
      this.dirtyPeers.delete(id);
    } else {
      this.dirtyPeers.add(id);
    }
    if (this.peersTimer || this.closed) return;
    this.peersTimer = setTimeout(
      () => this.broadcastPeers(),
      Math.min(500, 20 + Math.floor(this.agents.size / 4)),
    );
    this.peersTimer.unref();
  }

  private broadcastPeers(): void {
    this.peersTimer = undefined;
    const cards: AgentCard[] = [];
    const removed = [...this.removedPeers];
    for (const id of this.dirtyPeers) {
      const record = this.agents.get(id);
      // Explicit agents stay out of everyone's pool.
      if (record && !record.card.explicit) cards.push(this.cardOf(record));
      else if (record) removed.push(id);
    }
    this.dirtyPeers.clear();
    this.removedPeers.clear();
    if (cards.length === 0 && removed.length === 0) return;
    const item: QueueItem = { seq: this.seq, event: { kind: "peers", agents: cards, delta: true, removed } };
    for (const streams of this.streams.values()) for (const stream of streams) stream.push(item);
  }

  private agentOf(caller: Caller): AgentRecord {
    const record = this.agents.get(caller.id);
    if (!record) throw comsError("UNAUTHORIZED", "this agent is not registered on the hub (register again)");
    return record;
  }

  private setOf<T>(map: Map<string, Set<T>>, key: string): Set<T> {
    let set = map.get(key);
    if (!set) {
      set = new Set();
      map.set(key, set);
    }
    return set;
  }

  private assertOpen(): void {
    if (this.closed) throw comsError("PEER_GONE", "the hub is shutting down");
  }

  /** Graceful stop: end every stream and write what is pending. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.peersTimer);
    for (const streams of this.streams.values()) for (const stream of streams) stream.end();
    for (const set of this.watchers.values()) for (const wake of set) wake();
    await this.store.flush().catch(() => {});
    this.store.close();
  }
}

function jsonBytes(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value));
}

/**
 * The hub's live state, shared by the parts of the backend: agents and
 * messages as loaded from the store and kept in memory, the per-recipient
 * queues and per-sender untaken outcomes, and the event sequence. Every
 * change is written through the store by whoever makes it.
 */
import { comsError } from "../../contract/errors.ts";
import type { Caller } from "../../contract/router.ts";
import type { AgentStatus, Outcome } from "../../contract/schemas.ts";
import type { AgentRecord, HubStore, MessageRecord } from "../store/store.ts";
import type { HubEvents } from "./events.ts";
import { type HubLimits, resolveLimits } from "./limits.ts";
import { messageBytes, replyBytes } from "./message-bytes.ts";
import { MessageTable } from "./message-table.ts";
import { SendRateLimit } from "./rate-limit.ts";

export class HubState {
  readonly project: string;
  readonly limits: Required<HubLimits>;
  readonly store: HubStore;
  /** Agents, messages and refusals as they happen, for the dashboard feed and the metrics. */
  readonly events: HubEvents;
  readonly sendRate: SendRateLimit;
  readonly agents = new Map<string, AgentRecord>();
  readonly byName = new Map<string, string>();
  readonly messages = new MessageTable();
  /**
   * Recipient id → ids of its unsettled messages (its queue). Changed only
   * through enqueue/dequeue/dropQueue, which keep the hub-wide byte count exact.
   */
  readonly queues = new Map<string, Set<string>>();
  /** Unsettled message id → its size as the send was counted (prompt + response_schema JSON), and its sender. */
  private readonly queuedSizes = new Map<string, Held>();
  private queuedTotal = 0;
  /** Recipient id → bytes of its queue (its share of --max-queued-bytes). */
  private readonly recipientTotals = new Map<string, number>();
  /** Sender id → bytes held for it: its unanswered messages and the replies it has not taken. */
  private readonly senderTotals = new Map<string, number>();
  /** What senders hold past their share, all together: it counts against them, not against everyone's room. */
  private senderExcess = 0;
  /**
   * Sender id → ids of final messages whose outcome it has not taken yet.
   * Changed only through holdOutcome/takeOutcome: a reply waiting for its
   * sender is held by the hub just like a prompt waiting for its recipient,
   * so its bytes count toward the same hub-wide total.
   */
  readonly untaken = new Map<string, Set<string>>();
  /** Untaken final message id → the bytes of its reply, and its sender. */
  private readonly untakenSizes = new Map<string, Held>();
  readonly lastStatus = new Map<string, AgentStatus>();
  /** Agents registered here that have not opened an inbox stream yet (restored agents are not counted). */
  readonly pending = new Set<string>();
  /**
   * Unanswered messages already written to one of their recipient's streams
   * (in memory only: after a restart, only acked ones are known as delivered).
   */
  readonly handedOut = new Set<string>();
  seq: number;
  closed = false;

  constructor(store: HubStore, project: string, limits: HubLimits, events: HubEvents) {
    this.sendRate = new SendRateLimit(limits.maxSendsPerSec ?? 0);
    this.store = store;
    this.project = project;
    this.limits = resolveLimits(limits);
    this.events = events;
    for (const record of store.loadAgents()) {
      this.agents.set(record.card.id, record);
      this.byName.set(record.card.name, record.card.id);
    }
    for (const record of store.loadMessages()) {
      this.messages.set(record.message.msg_id, record);
      if (record.state !== "final") this.enqueue(record, restoredBytes(record));
      else if (!record.outcome_taken) this.holdOutcome(record);
    }
    this.seq = store.lastSeq;
    // Agents restored from disk have not been heard from since: their presence starts from now.
    const now = Date.now();
    for (const record of this.agents.values()) record.last_seen = Math.max(record.last_seen, now);
  }

  /** Bytes of every unanswered message and untaken reply the hub holds (what --max-queued-bytes bounds). */
  get queuedBytes(): number {
    return this.queuedTotal;
  }

  /**
   * What the hub-wide bound is checked against: every byte held, except what
   * a sender holds past its share (replies to what it had in flight, which
   * the hub cannot refuse): a sender that never takes its replies is refused
   * by its own share and does not use up everyone else's room.
   */
  get sharedBytes(): number {
    return this.queuedTotal - this.senderExcess;
  }

  /** Bytes held for a sender: its unanswered messages and the replies it has not taken. */
  senderBytes(id: string): number {
    return this.senderTotals.get(id) ?? 0;
  }

  /** Bytes of a recipient's queue. */
  recipientBytes(id: string): number {
    return this.recipientTotals.get(id) ?? 0;
  }

  /** Every sender holding anything, with its bytes (for the metrics). */
  sendersHolding(): IterableIterator<[string, number]> {
    return this.senderTotals.entries();
  }

  private countSender(id: string, delta: number): void {
    const share = this.limits.maxQueuedBytesPerAgent;
    const before = this.senderTotals.get(id) ?? 0;
    const after = before + delta;
    if (after === 0) this.senderTotals.delete(id);
    else this.senderTotals.set(id, after);
    if (share > 0) this.senderExcess += Math.max(0, after - share) - Math.max(0, before - share);
  }

  private countRecipient(id: string, delta: number): void {
    const after = (this.recipientTotals.get(id) ?? 0) + delta;
    if (after === 0) this.recipientTotals.delete(id);
    else this.recipientTotals.set(id, after);
  }

  /** Put an unsettled message in its recipient's queue, counting its bytes. */
  enqueue(record: MessageRecord, bytes: number): void {
    const msgId = record.message.msg_id;
    const queue = setOf(this.queues, record.message.to_id);
    if (queue.has(msgId)) return;
    queue.add(msgId);
    const from = record.message.from_id;
    this.queuedSizes.set(msgId, { bytes, from });
    this.queuedTotal += bytes;
    this.countRecipient(record.message.to_id, bytes);
    this.countSender(from, bytes);
  }

  /**
   * Take a message out of its recipient's queue (settled, expired, gone,
   * dropped); a no-op if it is not there. Returns the bytes it was counted at (0 if none).
   */
  dequeue(toId: string, msgId: string): number {
    const queue = this.queues.get(toId);
    if (!queue?.delete(msgId)) return 0;
    if (queue.size === 0) this.queues.delete(toId);
    const held = this.queuedSizes.get(msgId);
    if (!held) return 0;
    this.queuedSizes.delete(msgId);
    this.queuedTotal -= held.bytes;
    this.countRecipient(toId, -held.bytes);
    this.countSender(held.from, -held.bytes);
    return held.bytes;
  }

  /** Empty a recipient's queue (it was removed), uncounting whatever is still in it. */
  dropQueue(toId: string): void {
    for (const msgId of [...(this.queues.get(toId) ?? [])]) this.dequeue(toId, msgId);
  }

  /**
   * Keep a final outcome for its sender to take (or count a replaced one
   * anew), counting a reply's bytes; `bytes` when the caller has measured it already.
   */
  holdOutcome(record: MessageRecord, bytes = record.outcome ? outcomeBytes(record.outcome) : 0): void {
    const msgId = record.message.msg_id;
    const from = record.message.from_id;
    this.releaseOutcomeBytes(msgId);
    setOf(this.untaken, from).add(msgId);
    this.untakenSizes.set(msgId, { bytes, from });
    this.queuedTotal += bytes;
    this.countSender(from, bytes);
  }

  /** The sender took the outcome, or the record is going: a no-op if it was not held. */
  takeOutcome(fromId: string, msgId: string): void {
    const held = this.untaken.get(fromId);
    if (!held?.delete(msgId)) return;
    if (held.size === 0) this.untaken.delete(fromId);
    this.releaseOutcomeBytes(msgId);
  }

  private releaseOutcomeBytes(msgId: string): void {
    const held = this.untakenSizes.get(msgId);
    if (!held) return;
    this.untakenSizes.delete(msgId);
    this.queuedTotal -= held.bytes;
    this.countSender(held.from, -held.bytes);
  }

  nextSeq(): number {
    this.seq += 1;
    this.store.setLastSeq(this.seq);
    return this.seq;
  }

  /** Presence from the last time the agent was heard from. */
  statusOf(record: AgentRecord, now = Date.now()): AgentStatus {
    const silent = now - record.last_seen;
    if (silent >= this.limits.offlineAfterMs) return "offline";
    if (silent >= this.limits.staleAfterMs) return "stale";
    return "online";
  }

  agentOf(caller: Caller): AgentRecord {
    const record = this.agents.get(caller.id);
    if (!record) throw comsError("UNAUTHORIZED", "this agent is not registered on the hub (register again)");
    return record;
  }

  assertOpen(): void {
    if (this.closed) throw comsError("PEER_GONE", "the hub is shutting down");
  }
}

/** Bytes the hub holds for one message or reply, and the sender they count against. */
interface Held {
  bytes: number;
  from: string;
}

/** A restored message's size; one the encoder cannot measure any more counts its prompt alone. */
function restoredBytes(record: MessageRecord): number {
  try {
    return messageBytes(record.message.prompt, record.message.response_schema);
  } catch {
    return Buffer.byteLength(record.message.prompt);
  }
}

/** A reply's size as settle counted it; an error outcome holds next to nothing. */
function outcomeBytes(outcome: Outcome): number {
  if (outcome.state !== "reply") return 0;
  try {
    return replyBytes(outcome.text, outcome.value);
  } catch {
    return Buffer.byteLength(outcome.text);
  }
}

export function setOf<K, T>(map: Map<K, Set<T>>, key: K): Set<T> {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}

/**
 * Messages on the hub: accepting a send into the recipient's queue, the
 * receipt (ack) and the answer (settle), making a message final and routing
 * its outcome to the sender, watching an outcome change, and the sweep that
 * expires messages and purges tombstones.
 */
import type { z } from "zod";
import { comsError } from "../../contract/errors.ts";
import type { Caller } from "../../contract/router.ts";
import type { ErrorCode, Outcome, SendAck, SendInput, SettleInput } from "../../contract/schemas.ts";
import type { MessageRecord } from "../store/store.ts";
import { AsyncQueue } from "./async-queue.ts";
import { DueQueue } from "./due-queue.ts";
import type { QueueItem } from "./inbox-feed.ts";
import type { InboxStreams } from "./inbox-streams.ts";
import { TAKEN_RETENTION_MS } from "./limits.ts";
import { formatBytes, messageBytes, replyBytes } from "./message-bytes.ts";
import { messageOf } from "./sent-message.ts";
import { type HubState, setOf } from "./state.ts";

export class Messages {
  private readonly state: HubState;
  private readonly streams: InboxStreams;
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Unsettled messages, by when they expire. */
  private readonly expiring = new DueQueue((msgId) => {
    const state = this.state.messages.stateOf(msgId);
    return state !== undefined && state !== "final";
  });
  /** Final messages whose outcome waits for its sender, by when their tombstone goes (TTL after they finished). */
  private readonly untakenGoing = new DueQueue((msgId) => {
    const record = this.state.messages.unpacked(msgId);
    return record?.state === "final" && !record.outcome_taken;
  });
  /** Final messages whose outcome was taken, by when their tombstone goes. */
  private readonly takenGoing = new DueQueue((msgId) => this.state.messages.has(msgId));
  /**
   * Messages restored from the store: their times come from an earlier run
   * (perhaps with other limits), so the sweep looks at each until it is gone.
   */
  private restored: string[];

  constructor(state: HubState, streams: InboxStreams) {
    this.state = state;
    this.streams = streams;
    this.restored = state.messages.keys();
  }

  /**
   * Accept a send: checked and applied in this turn (a refusal throws here,
   * before anything changes), answered once the store has it. One promise per
   * send: the store's flush, then the ack.
   */
  accept(caller: Caller, input: z.output<typeof SendInput>): Promise<SendAck> {
    const record = this.take(caller, input);
    return this.state.store.flush().then(() => this.ackOf(record));
  }

  /** The synchronous part of accept: the record now holding the message (an earlier one for a retried msg_id). */
  private take(caller: Caller, input: z.output<typeof SendInput>): MessageRecord {
    const { state } = this;
    const { limits } = state;
    state.assertOpen();
    const sender = state.agentOf(caller);
    const bytes = messageBytes(input.prompt, input.response_schema);
    if (bytes > limits.maxMessageBytes) {
      throw comsError(
        "TOO_LARGE",
        `message is ${bytes} bytes; this hub accepts at most ${limits.maxMessageBytes}`,
      );
    }
    const hops = input.hops + 1;
    if (hops > limits.maxHops) {
      throw comsError("HOP_LIMIT", `hop limit reached (${input.hops} hops taken, limit ${limits.maxHops})`);
    }
    if (input.msg_id) {
      const previous = state.messages.get(input.msg_id);
      if (previous) {
        if (previous.message.from_id !== caller.id) throw comsError("BAD_INPUT", "msg_id already in use");
        return previous;
      }
    }
    const toId = state.byName.get(input.to);
    const recipient = toId === undefined ? undefined : state.agents.get(toId);
    if (!recipient) throw comsError("UNKNOWN_PEER", `no agent named ${input.to} on this hub`);
    if (recipient.card.id === caller.id) throw comsError("BAD_INPUT", "an agent cannot message itself");
    const waiting = state.queues.get(recipient.card.id)?.size ?? 0;
    if (limits.maxQueue > 0 && waiting >= limits.maxQueue) {
      throw comsError(
        "QUEUE_FULL",
        `${recipient.card.name}'s queue is full: it holds ${waiting} unanswered messages, the most this hub allows (--max-queue ${limits.maxQueue}); nothing was sent, retry once it has answered some`,
      );
    }
    const share = limits.maxQueuedBytesPerAgent;
    if (share > 0) {
      const own = state.senderBytes(caller.id);
      if (own + bytes > share) {
        throw comsError(
          "QUEUE_FULL",
          `your share of the hub's queues is used up: the hub holds ${formatBytes(own)} for you (your unanswered messages and the replies you have not taken), and this ${bytes}-byte message would pass an agent's share of ${formatBytes(share)} (--max-queued-bytes-per-agent ${share}); nothing was sent, retry once you have taken your replies or your messages were answered`,
        );
      }
      const queued = state.recipientBytes(recipient.card.id);
      if (queued + bytes > share) {
        throw comsError(
          "QUEUE_FULL",
          `${recipient.card.name}'s queue is full: it holds ${formatBytes(queued)} of unanswered messages, and this ${bytes}-byte message would pass an agent's share of ${formatBytes(share)} (--max-queued-bytes-per-agent ${share}); nothing was sent, retry once it has answered some`,
        );
      }
    }
    // What a sender holds past its share is refused above and does not take others' room.
    const held = state.sharedBytes;
    if (limits.maxQueuedBytes > 0 && held + bytes > limits.maxQueuedBytes) {
      throw comsError(
        "QUEUE_FULL",
        `the hub's queues are full: the hub as a whole holds ${formatBytes(held)} of unanswered messages and replies not yet taken, and this ${bytes}-byte message would pass its limit of ${formatBytes(limits.maxQueuedBytes)} (--max-queued-bytes ${limits.maxQueuedBytes}); nothing was sent, retry once recipients have answered some and senders taken their replies`,
      );
    }
    // Checked last, so only a message that would be stored spends a token; a retried msg_id above is free.
    const waitMs = state.sendRate.take(caller.id);
    if (waitMs > 0) {
      throw comsError(
        "RATE_LIMITED",
        `too many sends: this hub allows ${limits.maxSendsPerSec}/s per agent; retry in ${waitMs} ms (nothing was sent)`,
      );
    }
    const now = Date.now();
    const message = messageOf(input, sender.card, recipient.card, hops, now);
    // Every field a record ever gets is there from the start: one object whose later fields need no
    // extra property store (records live on as tombstones, so their size is paid in every GC).
    const record: MessageRecord = {
      message,
      state: "queued",
      expires_at: now + limits.messageTtlMs,
      deliver_seq: state.nextSeq(),
      outcome: undefined,
      outcome_seq: undefined,
      outcome_taken: undefined,
      done_at: undefined,
      bytes: undefined,
    };
    state.messages.set(message.msg_id, record);
    this.expiring.push(record.expires_at, message.msg_id);
    state.enqueue(record, bytes);
    state.store.putMessage(record);
    this.streams.publish(recipient.card.id, record.deliver_seq, { kind: "message", message }, message.msg_id);
    state.events.emit({ type: "sent", message, bytes });
    return record;
  }

  private ackOf(record: MessageRecord): SendAck {
    return {
      msg_id: record.message.msg_id,
      to: record.message.to,
      to_id: record.message.to_id,
      accepted_at: record.message.created_at,
      queue_depth: this.state.queues.get(record.message.to_id)?.size ?? 0,
    };
  }

  async get(caller: Caller, msgId: string): Promise<Outcome> {
    const record = this.state.messages.get(msgId);
    if (!record) return errorOutcome(msgId, "EXPIRED", "no such message on this hub (expired or purged)");
    if (record.message.from_id !== caller.id) {
      throw comsError("UNAUTHORIZED", "only the sender of a message can read its outcome");
    }
    this.expireIfDue(record, Date.now());
    return this.outcomeOf(record);
  }

  /**
   * A message past its lifetime is expired when it is looked at, not only at
   * the next sweep: a sender asking at its deadline hears EXPIRED, never a
   * pending that can no longer turn into a reply.
   */
  private expireIfDue(record: MessageRecord, now: number): void {
    if (record.state === "final" || record.expires_at > now) return;
    const ttl = this.state.limits.messageTtlMs;
    this.finish(
      record,
      errorOutcome(record.message.msg_id, "EXPIRED", `no reply within the message TTL (${ttl} ms)`),
    );
  }

  private outcomeOf(record: MessageRecord): Outcome {
    if (record.outcome) return record.outcome;
    const outcome: Outcome = {
      state: "pending",
      msg_id: record.message.msg_id,
      delivered: record.state === "acked",
    };
    // Said only when it matters: the message waits in the queue of an agent that is not there.
    const recipient = this.state.agents.get(record.message.to_id);
    if (recipient && this.state.statusOf(recipient) === "offline") outcome.recipient = "offline";
    return outcome;
  }

  async *watch(caller: Caller, msgId: string, signal: AbortSignal | undefined): AsyncIterable<Outcome> {
    const first = await this.get(caller, msgId);
    yield first;
    if (first.state !== "pending") return;
    let last = JSON.stringify(first);
    const queue = new AsyncQueue<true>();
    const wake = () => queue.push(true);
    setOf(this.watchers, msgId).add(wake);
    const onAbort = () => queue.end();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!this.state.closed) {
        const record = this.state.messages.get(msgId);
        if (record) this.expireIfDue(record, Date.now());
        const outcome = record
          ? this.outcomeOf(record)
          : errorOutcome(msgId, "EXPIRED", "no such message on this hub (expired or purged)");
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

  /** Applied in this turn; the promise is the store's flush (shared by everything in the same commit). */
  ack(caller: Caller, msgIds: string[]): Promise<void> {
    const { state } = this;
    for (const msgId of msgIds) {
      const record = state.messages.get(msgId);
      if (!record) continue;
      if (record.message.to_id === caller.id && record.state === "queued") {
        record.state = "acked";
        state.store.putMessage(record);
        this.notify(msgId);
        state.events.emit({ type: "delivered", message: record.message, at: Date.now() });
      } else if (record.message.from_id === caller.id && record.state === "final" && !record.outcome_taken) {
        // Not written: after a restart the reply is offered to its sender once more (at least once),
        // and the sender's client drops a reply it already has; a write per answered prompt is saved.
        record.outcome_taken = true;
        record.done_at = Date.now();
        this.takenGoing.push(record.done_at + this.takenRetention(), msgId);
        this.untakenGoing.forgot();
        state.takeOutcome(caller.id, msgId);
        state.messages.pack(msgId);
      }
    }
    return state.store.flush();
  }

  /** Applied in this turn (a refusal throws here, before anything changes); the promise is the store's flush. */
  settle(caller: Caller, input: z.output<typeof SettleInput>): Promise<void> {
    const record = this.state.messages.get(input.msg_id);
    if (!record) throw comsError("EXPIRED", "no such message on this hub (expired or purged)");
    if (record.message.to_id !== caller.id) {
      throw comsError("UNAUTHORIZED", "only the recipient of a message can answer it");
    }
    if (record.state === "final") {
      if (record.outcome?.state === "error" && record.outcome.code === "EXPIRED") {
        throw comsError("EXPIRED", record.outcome.message);
      }
      if (record.outcome?.state === "error" && record.outcome.code === "PEER_GONE") {
        throw comsError(
          "EXPIRED",
          `too late: this message already ended for its sender (${record.outcome.message})`,
        );
      }
      throw comsError("BAD_INPUT", "this message has already been answered");
    }
    const result = input.result;
    // Measured once: for the size limit here and for the hub-wide count while the reply waits for its sender.
    let bytes = 0;
    if (result.ok) {
      bytes = replyBytes(result.text, result.value);
      const max = this.state.limits.maxMessageBytes;
      if (bytes > max) {
        throw comsError("TOO_LARGE", `reply is ${bytes} bytes; this hub accepts at most ${max}`);
      }
    }
    let outcome: Outcome;
    if (result.ok) {
      // Built whole, fields in the wire order (see sent-message.ts).
      const from = record.message.to;
      outcome =
        result.value === undefined
          ? { state: "reply", msg_id: input.msg_id, from, text: result.text, replied_at: Date.now() }
          : {
              state: "reply",
              msg_id: input.msg_id,
              from,
              text: result.text,
              value: result.value,
              replied_at: Date.now(),
            };
    } else {
      outcome = { state: "error", msg_id: input.msg_id, code: result.code, message: result.message };
    }
    this.finish(record, outcome, bytes);
    return this.state.store.flush();
  }

  /** Make a message final and route its outcome to the sender. */
  finish(record: MessageRecord, outcome: Outcome, replySize?: number): void {
    const { state } = this;
    const msg = record.message;
    record.state = "final";
    this.expiring.forgot();
    record.outcome = outcome;
    record.outcome_seq = state.nextSeq();
    record.done_at = Date.now();
    // A tombstone does not need the prompt any more.
    record.message = { ...msg, prompt: "" };
    const bytes = state.dequeue(msg.to_id, msg.msg_id);
    // Kept for an observer that starts later (the dashboard), as the prompt is not.
    if (bytes > 0) record.bytes = bytes;
    state.handedOut.delete(msg.msg_id);
    if (state.agents.has(msg.from_id)) {
      state.holdOutcome(record, replySize);
      this.streams.publish(msg.from_id, record.outcome_seq, { kind: "outcome", outcome }, msg.msg_id);
      this.untakenGoing.push(record.done_at + state.limits.messageTtlMs, msg.msg_id);
    } else {
      record.outcome_taken = true;
      this.takenGoing.push(record.done_at + this.takenRetention(), msg.msg_id);
    }
    state.store.putMessage(record);
    if (record.outcome_taken) state.messages.pack(msg.msg_id);
    this.notify(msg.msg_id);
    state.events.emit({ type: "settled", message: msg, outcome, at: record.done_at });
  }

  /**
   * A stream could not take this event (it cannot be serialized: a schema
   * nested too deep for the encoder, a value that throws). The stream has
   * skipped it and goes on; here the message ends for good so that no
   * reconnect replays it: a message ends BAD_INPUT for its sender, and a reply
   * that cannot reach its sender is replaced by that error. Deferred, so that
   * a send whose own publish failed finishes first (its "sent" comes before
   * this "settled").
   */
  undeliverable(item: QueueItem, error: unknown): void {
    if (item.event.kind === "peers") return;
    const msgId = item.event.kind === "message" ? item.event.message.msg_id : item.event.outcome.msg_id;
    const why = error instanceof Error ? error.message : String(error);
    const kind = item.event.kind;
    const outcome = item.event.kind === "outcome" ? item.event.outcome : undefined;
    queueMicrotask(() => {
      const record = this.state.messages.get(msgId);
      if (!record) return;
      if (kind === "message" && record.state !== "final") {
        this.finish(
          record,
          errorOutcome(
            msgId,
            "BAD_INPUT",
            `undeliverable: the hub cannot encode this message for ${record.message.to}'s inbox (${why}); it was not delivered`,
          ),
        );
      } else if (kind === "outcome" && record.outcome === outcome && outcome?.state === "reply") {
        this.reroute(
          record,
          errorOutcome(
            msgId,
            "BAD_INPUT",
            `undeliverable reply: ${record.message.to} answered, but the hub cannot encode the reply (${why})`,
          ),
        );
      }
    });
  }

  /** Replace a final outcome the sender has not been able to take, and send it the new one. */
  private reroute(record: MessageRecord, outcome: Outcome): void {
    const { state } = this;
    const msg = record.message;
    record.outcome = outcome;
    record.outcome_seq = state.nextSeq();
    if (state.untaken.get(msg.from_id)?.has(msg.msg_id)) {
      state.holdOutcome(record);
      this.streams.publish(msg.from_id, record.outcome_seq, { kind: "outcome", outcome }, msg.msg_id);
    }
    state.store.putMessage(record);
    this.notify(msg.msg_id);
    state.events.emit({ type: "settled", message: msg, outcome, at: Date.now(), replaced: true });
  }

  dropMessage(msgId: string): void {
    const { state } = this;
    if (state.messages.isPacked(msgId)) {
      // A tombstone: its queue, its sender's untaken replies and the handed-out set let go of it already.
      state.messages.delete(msgId);
      this.takenGoing.forgot();
      state.store.deleteMessage(msgId);
      return;
    }
    const record = state.messages.get(msgId);
    if (!record) return;
    state.messages.delete(msgId);
    if (record.state !== "final") this.expiring.forgot();
    else (record.outcome_taken ? this.takenGoing : this.untakenGoing).forgot();
    state.dequeue(record.message.to_id, msgId);
    state.takeOutcome(record.message.from_id, msgId);
    state.handedOut.delete(msgId);
    state.store.deleteMessage(msgId);
  }

  /**
   * Expire messages past their TTL; purge tombstones whose outcome was taken
   * or is old. Only what falls due now is looked at (and what was restored
   * from the store, until it is gone), not every message the hub holds.
   */
  sweep(now: number): void {
    const look = (msgId: string) => {
      const record = this.state.messages.get(msgId);
      if (record) this.sweepOne(record, now);
    };
    this.expiring.takeDue(now, look);
    this.untakenGoing.takeDue(now, look);
    // A packed tombstone falls due here exactly when it is to go: no need to read it back.
    this.takenGoing.takeDue(now, (msgId) =>
      this.state.messages.isPacked(msgId) ? this.dropMessage(msgId) : look(msgId),
    );
    if (this.restored.length > 0) {
      this.restored = this.restored.filter((msgId) => {
        look(msgId);
        return this.state.messages.has(msgId);
      });
    }
  }

  private sweepOne(record: MessageRecord, now: number): void {
    if (record.state !== "final") this.expireIfDue(record, now);
    else if (
      (record.outcome_taken && (record.done_at ?? 0) + TAKEN_RETENTION_MS <= now) ||
      (record.done_at ?? 0) + this.state.limits.messageTtlMs <= now
    ) {
      this.dropMessage(record.message.msg_id);
    }
  }

  /** How long a tombstone whose outcome was taken stays (never past the TTL). */
  private takenRetention(): number {
    return Math.min(TAKEN_RETENTION_MS, this.state.limits.messageTtlMs);
  }

  /**
   * The recipient is gone: offline (its presence lapsed), or stale with no
   * inbox stream open (a crashed process: its stream closed with it). What it
   * was handed and has not answered (acked, or written to its stream) cannot
   * be answered by anyone now: it ends PEER_GONE at once, `cause` first, so
   * the sender is not left waiting to the TTL. What was never handed out stays
   * queued for its return (get says when the recipient is offline) until it
   * is reaped.
   */
  recipientGone(agentId: string, cause: string): void {
    const { state } = this;
    for (const msgId of [...(state.queues.get(agentId) ?? [])]) {
      const record = state.messages.get(msgId);
      if (!record || record.state === "final") continue;
      if (record.state === "acked" || state.handedOut.has(msgId)) {
        const how =
          record.state === "acked" ? "it had received this message" : "this message had been sent to it";
        this.finish(record, errorOutcome(msgId, "PEER_GONE", `${cause} after ${how}, without answering`));
      } else this.notify(msgId);
    }
  }

  /** The recipient is back: its queued messages' pending outcome no longer says offline. */
  recipientBack(agentId: string): void {
    for (const msgId of this.state.queues.get(agentId) ?? []) this.notify(msgId);
  }

  private notify(msgId: string): void {
    for (const wake of this.watchers.get(msgId) ?? []) wake();
  }

  /** Wake every watcher (the hub is closing: they see it and end). */
  wakeAll(): void {
    for (const set of this.watchers.values()) for (const wake of set) wake();
  }
}

export function errorOutcome(msgId: string, code: ErrorCode, message: string): Outcome {
  return { state: "error", msg_id: msgId, code, message };
}

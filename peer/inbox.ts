/**
 * The receiving side of one agent: messages accepted from peers, their
 * outcomes, and the watchers (senders) waiting on them. Only the verified
 * sender of a message may read or watch its outcome.
 */
import type { z } from "zod";
import { ComsError, comsError, SELF_MESSAGE } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { Caller, OutcomeEvent } from "../contract/router.ts";
import {
  type AgentCard,
  MAX_TEXT_LENGTH,
  type Message,
  type Outcome,
  type ReplyResult,
  type SendAck,
  type SendInput as SendInputSchema,
} from "../contract/schemas.ts";
import { MAX_FRAME_BYTES } from "./ipc.ts";
import { outcomeBytes, type Retained, type RetentionLimit, unsendable, wireBound } from "./retention.ts";

/** Outcome changes sent in one frame of a `messages.outcomes` stream, at most. */
const MAX_BATCH = 256;
/** A batch stops growing at this many (worst-case) encoded bytes, so it always fits a frame. */
const MAX_BATCH_BYTES = MAX_FRAME_BYTES / 2;

/** Who this inbox belongs to, as a message and an ack name it. */
type Self = Pick<AgentCard, "id" | "name">;

interface Received {
  message: Message;
  outcome: Outcome;
  settled: boolean;
  /** Position of the latest outcome change in this inbox's change order (0: unchanged since accepted). */
  seq: number;
  /** What it counts against the retention limit once settled. */
  bytes: number;
  /** Made by the first watch: most messages never have one. */
  watchers?: Set<(outcome: Outcome) => void>;
}

export class Inbox {
  private readonly received = new Map<string, Received>();
  private readonly undelivered: Message[] = [];
  private readonly handlers = new Set<(message: Message) => void>();
  private settledCount = 0;
  private settledBytes = 0;
  private unsettled = 0;
  private seq = 0;
  private deliveryQueued = false;
  /** Open `outcomes` streams by the sender's agent id. */
  private readonly streams = new Map<string, Set<(event: OutcomeEvent) => void>>();
  /** Settled messages kept for late `get` calls and resumed streams; the oldest are forgotten first. */
  private readonly keep: RetentionLimit;
  /** Names this inbox's owner in error outcomes. */
  private readonly selfName: () => string;

  constructor(keep: RetentionLimit, selfName: () => string = () => "the recipient") {
    this.keep = keep;
    this.selfName = selfName;
  }

  /** Settled messages kept now, and their approximate bytes. */
  retained(): Retained {
    return { count: this.settledCount, bytes: this.settledBytes };
  }

  /** Unsettled inbound messages (the queue depth peers see). */
  depth(): number {
    return this.unsettled;
  }

  accept(caller: Caller, input: z.output<typeof SendInputSchema>, self: Self, maxHops: number): SendAck {
    if (input.prompt.length > MAX_TEXT_LENGTH) {
      throw comsError("TOO_LARGE", `prompt is over ${MAX_TEXT_LENGTH} characters`);
    }
    const hops = input.hops + 1;
    if (hops > maxHops) throw comsError("HOP_LIMIT", "hop limit reached");
    if (input.to !== self.name) {
      throw comsError("UNKNOWN_PEER", `this socket serves ${self.name}, not ${input.to}`);
    }
    if (caller.id === self.id) throw comsError("BAD_INPUT", SELF_MESSAGE);
    const msgId = input.msg_id ?? ulid();
    const known = this.received.get(msgId);
    if (known) {
      if (known.message.from_id !== caller.id)
        throw comsError("BAD_INPUT", `msg_id ${msgId} is already used`);
      return this.ack(known.message, self);
    }
    const message: Message = {
      msg_id: msgId,
      from: caller.name,
      from_id: caller.id,
      to: self.name,
      to_id: self.id,
      prompt: input.prompt,
      hops,
      created_at: Date.now(),
    };
    if (input.conversation_id !== undefined) message.conversation_id = input.conversation_id;
    if (input.response_schema !== undefined) message.response_schema = input.response_schema;
    if (input.chain_id !== undefined) message.chain_id = input.chain_id;
    this.received.set(msgId, {
      message,
      outcome: { state: "pending", msg_id: msgId, delivered: false },
      settled: false,
      seq: 0,
      bytes: 0,
    });
    this.unsettled++;
    this.undelivered.push(message);
    // Hand it over after the ack is on its way.
    this.scheduleDelivery();
    return this.ack(message, self);
  }

  onMessage(handler: (message: Message) => void): () => void {
    this.handlers.add(handler);
    this.scheduleDelivery();
    return () => {
      this.handlers.delete(handler);
    };
  }

  outcome(caller: Caller, msgId: string): Outcome {
    return this.mine(caller, msgId).outcome;
  }

  async *watch(caller: Caller, msgId: string, signal: AbortSignal | undefined): AsyncIterable<Outcome> {
    const entry = this.mine(caller, msgId);
    const queue: Outcome[] = [entry.outcome];
    let wake: (() => void) | undefined;
    const push = (outcome: Outcome) => {
      queue.push(outcome);
      wake?.();
    };
    const onAbort = () => wake?.();
    entry.watchers ??= new Set();
    entry.watchers.add(push);
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        const next = queue.shift();
        if (!next) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        yield next;
        if (next.state !== "pending") return;
      }
    } finally {
      entry.watchers?.delete(push);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Every outcome change of the caller's messages, batched: first those after
   * `after` (what a re-opened stream missed), then each new one as it happens.
   */
  async *outcomes(
    caller: Caller,
    after: number,
    signal: AbortSignal | undefined,
  ): AsyncIterable<OutcomeEvent[]> {
    const missed: OutcomeEvent[] = [];
    for (const entry of this.received.values()) {
      if (entry.seq > after && entry.message.from_id === caller.id) {
        missed.push({ seq: entry.seq, outcome: entry.outcome });
      }
    }
    const queue = missed.sort((a, b) => a.seq - b.seq);
    let wake: (() => void) | undefined;
    const push = (event: OutcomeEvent) => {
      queue.push(event);
      wake?.();
    };
    const onAbort = () => wake?.();
    let mine = this.streams.get(caller.id);
    if (!mine) {
      mine = new Set();
      this.streams.set(caller.id, mine);
    }
    mine.add(push);
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        yield queue.splice(0, batchLength(queue));
      }
    } finally {
      mine.delete(push);
      if (mine.size === 0 && this.streams.get(caller.id) === mine) this.streams.delete(caller.id);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  settle(msgId: string, result: ReplyResult, selfName: string): void {
    const entry = this.received.get(msgId);
    if (!entry) throw new ComsError("BAD_INPUT", `no inbound message ${msgId}`);
    if (entry.settled) throw new ComsError("BAD_INPUT", `message ${msgId} is already settled`);
    const outcome: Outcome = result.ok
      ? {
          state: "reply",
          msg_id: msgId,
          from: selfName,
          text: result.text,
          ...(result.value !== undefined && { value: result.value }),
          replied_at: Date.now(),
        }
      : { state: "error", msg_id: msgId, code: result.code, message: result.message };
    // A reply that cannot reach the sender must not reach its outcome stream either (it would
    // end the stream for every message after it): the sender gets a definite error instead.
    const problem = unsendable(outcome);
    if (problem === undefined) {
      this.finish(entry, outcome);
      return;
    }
    const message = `${selfName}'s reply could not be sent: ${problem}`;
    this.finish(entry, { state: "error", msg_id: msgId, code: "BAD_INPUT", message });
    throw new ComsError("BAD_INPUT", `${message}; the sender was told so`);
  }

  /** Leaving: every unsettled message ends with this error, pushed to its sender. */
  failAll(code: "PEER_GONE", message: string): void {
    for (const entry of this.received.values()) {
      if (!entry.settled) {
        this.finish(entry, { state: "error", msg_id: entry.message.msg_id, code, message });
      }
    }
    this.undelivered.length = 0;
  }

  private finish(entry: Received, outcome: Outcome): void {
    entry.settled = true;
    this.unsettled--;
    // Only what a late `get` or a resumed stream needs stays: the prompt and schema go.
    const { prompt: _prompt, response_schema: _schema, ...kept } = entry.message;
    entry.message = { ...kept, prompt: "" };
    this.changed(entry, outcome);
    entry.bytes = outcomeBytes(outcome);
    this.settledCount++;
    this.settledBytes += entry.bytes;
    if (this.settledCount > this.keep.count || this.settledBytes > this.keep.bytes) this.forgetOldest();
  }

  private changed(entry: Received, outcome: Outcome): void {
    entry.outcome = outcome;
    entry.seq = ++this.seq;
    if (entry.watchers) for (const watcher of entry.watchers) watcher(outcome);
    const streams = this.streams.get(entry.message.from_id);
    if (streams) for (const push of streams) push({ seq: entry.seq, outcome });
  }

  /** Down to half of each limit, so that trimming is rare (amortised), not once per settle. */
  private forgetOldest(): void {
    for (const [id, entry] of this.received) {
      if (this.settledCount <= this.keep.count / 2 && this.settledBytes <= this.keep.bytes / 2) break;
      if (!entry.settled || (entry.watchers?.size ?? 0) > 0) continue;
      this.received.delete(id);
      this.settledCount--;
      this.settledBytes -= entry.bytes;
    }
  }

  private mine(caller: Caller, msgId: string): Received {
    const entry = this.received.get(msgId);
    // The same answer for "unknown" and "someone else's": ids are not an oracle.
    if (!entry || entry.message.from_id !== caller.id) {
      throw comsError("BAD_INPUT", `no message ${msgId} from ${caller.name} here`);
    }
    return entry;
  }

  /** One delivery pass per turn, however many messages were accepted in it. */
  private scheduleDelivery(): void {
    if (this.deliveryQueued) return;
    this.deliveryQueued = true;
    setImmediate(() => {
      this.deliveryQueued = false;
      this.deliver();
    });
  }

  private deliver(): void {
    if (this.handlers.size === 0) return;
    while (this.undelivered.length > 0) {
      const message = this.undelivered.shift() as Message;
      const entry = this.received.get(message.msg_id);
      if (!entry || entry.settled) continue;
      if (entry.outcome.state === "pending") {
        this.changed(entry, { state: "pending", msg_id: message.msg_id, delivered: true });
      }
      let failure: unknown;
      let taken = false;
      for (const handler of this.handlers) {
        try {
          handler(message);
          taken = true;
        } catch (error) {
          // A failing handler must not stop delivery to the others, nor to later messages.
          failure = error;
        }
      }
      if (!taken && !entry.settled) {
        // Nobody could take it: it ends now, with a definite error for its sender.
        const why = failure instanceof Error ? failure.message : String(failure);
        this.finish(entry, {
          state: "error",
          msg_id: message.msg_id,
          code: "BAD_INPUT",
          message: `${this.selfName()} could not take this message: ${why}`.slice(0, 4000),
        });
      }
    }
  }

  private ack(message: Message, self: Self): SendAck {
    return {
      msg_id: message.msg_id,
      to: self.name,
      to_id: self.id,
      accepted_at: message.created_at,
      queue_depth: this.unsettled,
    };
  }
}

/** How many queued events go in the next frame: at least one, at most MAX_BATCH, within MAX_BATCH_BYTES. */
function batchLength(queue: OutcomeEvent[]): number {
  let bytes = 0;
  let n = 0;
  while (n < queue.length && n < MAX_BATCH) {
    bytes += wireBound((queue[n] as OutcomeEvent).outcome);
    if (n > 0 && bytes > MAX_BATCH_BYTES) break;
    n++;
  }
  return n;
}

/**
 * The turn / peer-prompt state machine.
 *
 *   arrive ─► queue ─┬─ agent idle ─────────────► inject, start a turn ─┐
 *                    ├─ agent blocked in *_await ► inject as steer,     │
 *                    │                             the await returns    │
 *                    └─ agent busy otherwise ───► wait for settle       │
 *   agent settled ◄─────────────────────────────────────────────────────┘
 *     └─► one prompt: reply = last assistant text after the injected entry
 *         (schema-checked; aborted / failed turn → error);
 *         several: each was answered with the reply tool, and any left
 *         unanswered is shown again on its own; then the next batch, then
 *         a reminder for interrupted awaits.
 *
 * Queued prompts without a response_schema go in together, one turn for
 * all, but a sender only ever receives the text given for its own msg_id:
 * the final text of a turn is captured only when that turn had a single
 * prompt. A prompt with a schema goes alone since its reply must be exactly
 * one JSON value. Everything that must survive /reload lives in ComsState.
 */
import { randomUUID } from "node:crypto";
import type { ExtensionAPI, ExtensionContext } from "@earendil-works/pi-coding-agent";
import type { ReplyResult } from "../contract/schemas.ts";
import { systemLabel, toolPrefix } from "../tools/names.ts";
import {
  INBOUND_TYPE,
  type InboundDetails,
  type InboundView,
  inboundText,
  NOTICE_TYPE,
  REPLY_ENTRY_TYPE,
  RESUME_TYPE,
  type ReplyEntry,
  resumeText,
  viewOf,
} from "./messages.ts";
import { type ComsState, type InboundItem, type InFlightBatch, type SystemKind, slotOf } from "./state.ts";

type Waiter = (items: InboundView[]) => void;

const START_GRACE_MS = 10_000;

interface BranchEntry {
  type: string;
  customType?: string;
  details?: unknown;
  message?: { role?: string; content?: unknown; stopReason?: string; errorMessage?: string };
}

export class InboundDelivery {
  private readonly pi: ExtensionAPI;
  private readonly state: ComsState;
  private readonly onChange: () => void;
  private ctx: ExtensionContext | undefined;
  /** Between starting a turn for a batch and that turn's agent_start: count as busy. */
  private starting = false;
  private readonly waiters = new Set<Waiter>();

  constructor(pi: ExtensionAPI, state: ComsState, onChange: () => void) {
    this.pi = pi;
    this.state = state;
    this.onChange = onChange;
  }

  /** The freshest context seen; pi hands a new one to every event. */
  useContext(ctx: ExtensionContext): void {
    this.ctx = ctx;
  }

  get depth(): number {
    return this.state.queue.length + this.state.inFlight.reduce((n, b) => n + b.items.length, 0);
  }

  /** A new message reached the queue (or the module was just loaded with a non-empty queue). */
  arrived(): void {
    this.onChange();
    this.flush();
  }

  agentStarted(): void {
    this.starting = false;
  }

  /**
   * Let a blocked await hear about peer prompts. The waiter fires at most
   * once, when queued prompts are slipped into the running turn.
   */
  watchForPrompts(waiter: Waiter): () => void {
    this.waiters.add(waiter);
    queueMicrotask(() => this.flush());
    return () => this.waiters.delete(waiter);
  }

  /**
   * Pick the next batch: a prompt shown before without an answer goes alone;
   * otherwise every schema-less prompt together, or one prompt with a schema.
   */
  private takeBatch(): InboundItem[] {
    const first = this.state.queue[0];
    const plain = this.state.queue.filter((item) => !item.message.response_schema && !item.alone);
    const batch = first?.alone || plain.length === 0 ? this.state.queue.slice(0, 1) : plain;
    const taken = new Set(batch);
    this.state.queue = this.state.queue.filter((item) => !taken.has(item));
    return batch;
  }

  private views(items: InboundItem[]): InboundView[] {
    return items.map((item) => viewOf(item, slotOf(this.state, item.system)?.peers ?? []));
  }

  private inject(via: InFlightBatch["via"]): InboundView[] {
    const items = this.takeBatch();
    const batch: InFlightBatch = {
      id: randomUUID(),
      items,
      via,
      answerBy: items.length === 1 ? "final" : "tool",
      injectedAt: Date.now(),
    };
    const views = this.views(items);
    this.state.inFlight.push(batch);
    const details: InboundDetails = { batchId: batch.id, items: views };
    const message = { customType: INBOUND_TYPE, content: inboundText(views, via), display: true, details };
    if (via === "turn") {
      this.starting = true;
      // Should the turn never start (no model, say), stop holding the queue back; settle requeues the batch.
      setTimeout(() => {
        if (!this.starting) return;
        this.starting = false;
        this.flush();
      }, START_GRACE_MS).unref();
      this.pi.sendMessage(message, { triggerTurn: true });
    } else {
      this.pi.sendMessage(message, { triggerTurn: true, deliverAs: "steer" });
    }
    return views;
  }

  flush(): void {
    const ctx = this.ctx;
    if (!ctx || this.state.queue.length === 0 || this.starting) return;
    let idle: boolean;
    try {
      idle = ctx.isIdle() && !ctx.hasPendingMessages();
    } catch {
      return; // a context from an unloaded runtime; the next event brings a fresh one
    }
    if (idle) {
      this.inject("turn");
    } else if (this.waiters.size > 0) {
      const views = this.inject("steer");
      const waiters = [...this.waiters];
      this.waiters.clear();
      for (const waiter of waiters) waiter(views);
    }
    this.onChange();
  }

  /**
   * An assistant message is complete (before its tool calls run). A prompt
   * slipped into a running turn is answered by the first text the agent
   * writes after it, so the agent can answer and keep waiting on its own
   * work in the same message.
   */
  async messageEnded(ctx: ExtensionContext, message: BranchEntry["message"]): Promise<void> {
    this.ctx = ctx;
    if (message?.role !== "assistant") return;
    const steered = this.state.inFlight.filter(
      (batch) => batch.via === "steer" && batch.answerBy === "final",
    );
    if (steered.length === 0) return;
    const branch = branchOf(ctx);
    if (!branch) return;
    const outcome = firstReplyAfter([{ type: "message", message }]);
    if (!outcome) return;
    for (const batch of steered) {
      if (injectionIndex(branch, batch.id) === -1) continue; // not yet in the conversation
      this.state.inFlight = this.state.inFlight.filter((b) => b !== batch);
      await this.answer(batch, outcome);
    }
    this.onChange();
  }

  /** The run is over for good: send the replies it produced, then deliver what waited. */
  async settled(ctx: ExtensionContext): Promise<void> {
    this.ctx = ctx;
    this.starting = false;
    const branch = branchOf(ctx);
    if (!branch) return;
    for (const batch of [...this.state.inFlight]) {
      const at = injectionIndex(branch, batch.id);
      if (at === -1) {
        if (batch.via === "steer" && ctx.hasPendingMessages()) continue;
        // It never reached the transcript (the run ended first): deliver it again.
        this.state.inFlight = this.state.inFlight.filter((b) => b !== batch);
        this.state.queue.unshift(...batch.items);
        continue;
      }
      this.state.inFlight = this.state.inFlight.filter((b) => b !== batch);
      const after = branch.slice(at + 1);
      const failed = turnFailed(after);
      if (batch.answerBy === "tool" && !failed) {
        // Not answered with the reply tool: never guess from shared text; show each again on its own.
        this.state.queue.unshift(...batch.items.map((item) => ({ ...item, alone: true })));
        this.noticeAskedAgain(batch.items);
        continue;
      }
      await this.answer(batch, failed ?? replyAfter(after));
    }
    this.onChange();
    if (this.state.queue.length > 0) {
      this.flush();
    } else if (this.state.inFlight.length === 0 && this.state.interrupted.length > 0) {
      const waits = this.state.interrupted.splice(0);
      this.pi.sendMessage(
        { customType: RESUME_TYPE, content: resumeText(waits), display: true, details: { waits } },
        { triggerTurn: true },
      );
    }
  }

  /**
   * The reply tool: answer one prompt that is in front of the agent. Throws,
   * and sends nothing, when there is no such prompt or the text does not
   * match the sender's response_schema (the agent can fix it and call again).
   */
  async replyTo(system: SystemKind, msgId: string, text: string): Promise<ReplyEntry> {
    const { checkReply, MAX_TEXT_LENGTH } = await contractChecks();
    const batch = this.state.inFlight.find((b) => b.items.some((i) => i.message.msg_id === msgId));
    const item = batch?.items.find((i) => i.message.msg_id === msgId);
    if (!batch || !item) {
      const queued = this.state.queue.some((i) => i.message.msg_id === msgId);
      throw new Error(
        queued
          ? `the prompt ${msgId} has not been shown to you yet; it comes in a later message`
          : `no open peer prompt has msg_id ${msgId} (already answered, or not a prompt to you)`,
      );
    }
    if (item.system !== system)
      throw new Error(
        `${msgId} came over ${systemLabel(item.system)}: answer it with ${toolPrefix(item.system)}_reply`,
      );
    let result: ReplyResult = { ok: true, text: text.slice(0, MAX_TEXT_LENGTH) };
    const schema = item.message.response_schema;
    if (schema) {
      const check = checkReply(text, schema);
      if (!check.ok)
        throw new Error(
          `SCHEMA_MISMATCH: ${check.message}. Nothing was sent; call ${toolPrefix(system)}_reply again with JSON that matches.`,
        );
      result = { ...result, value: check.value };
    }
    // Taken out before the first await, so a second call for the same msg_id finds nothing.
    batch.items = batch.items.filter((i) => i !== item);
    if (batch.items.length === 0) this.state.inFlight = this.state.inFlight.filter((b) => b !== batch);
    const entry = await this.deliver(item, result);
    this.onChange();
    return entry;
  }

  private async answer(batch: InFlightBatch, outcome: TurnOutcome): Promise<void> {
    // Loaded here, not with the plugin: only a session with an active system gets this far.
    const { checkReply, MAX_TEXT_LENGTH } = await contractChecks();
    for (const item of batch.items) {
      let result: ReplyResult;
      if (!outcome.ok) result = { ok: false, code: outcome.code, message: outcome.message };
      else if (item.message.response_schema) {
        const check = checkReply(outcome.text, item.message.response_schema);
        result = check.ok
          ? { ok: true, text: outcome.text.slice(0, MAX_TEXT_LENGTH), value: check.value }
          : { ok: false, code: "SCHEMA_MISMATCH", message: check.message };
      } else result = { ok: true, text: outcome.text.slice(0, MAX_TEXT_LENGTH) };
      const entry = await this.deliver(item, result);
      if (!result.ok && result.code === "SCHEMA_MISMATCH") this.noticeRejected(entry, result.message);
    }
  }

  /** Settle one prompt with its sender and record what was sent in the transcript. */
  private async deliver(item: InboundItem, result: ReplyResult): Promise<ReplyEntry> {
    const slot = slotOf(this.state, item.system);
    const card = slot?.peers.find((p) => p.id === item.message.from_id);
    const entry: ReplyEntry = {
      system: item.system,
      msg_id: item.message.msg_id,
      to: item.message.from,
      color: card?.color,
      ok: result.ok,
      text: result.ok ? result.text : `${result.code}: ${result.message}`,
    };
    if (!slot) {
      entry.ok = false;
      entry.text = `not sent: ${item.system === "p2p" ? "/coms" : "/coms-net"} is no longer active`;
    } else {
      try {
        await slot.client.settle(item.message.msg_id, result);
      } catch (error) {
        entry.ok = false;
        entry.text = `not sent: ${(error as Error).message}`;
      }
    }
    try {
      this.pi.appendEntry(REPLY_ENTRY_TYPE, entry);
    } catch {
      // the runtime was replaced while settling; the reply itself went out
    }
    return entry;
  }

  /** Prompts of a batch left without the reply tool: the user learns once why they come back one by one. */
  private noticeAskedAgain(items: InboundItem[]): void {
    const from = [...new Set(items.map((item) => item.message.from))].join(", ");
    try {
      this.ctx?.ui.notify(
        `coms: ${items.length} peer prompt(s) from ${from} were not answered with the reply tool, so no answer reached them; each is asked again on its own.`,
        "warning",
      );
    } catch {
      // a context of an unloaded runtime; the re-asked prompt itself says why it is back
    }
  }

  /** The responder's reply broke the sender's response_schema: tell the user now and the agent next turn. */
  private noticeRejected(entry: ReplyEntry, why: string): void {
    const text = `[pi-coms] Your reply to "${entry.to}" (msg_id ${entry.msg_id}) was rejected: ${why}. "${entry.to}" received a SCHEMA_MISMATCH error instead of your text.`;
    try {
      this.ctx?.ui.notify(`coms: reply to ${entry.to} rejected (SCHEMA_MISMATCH): ${why}`, "warning");
      this.pi.sendMessage(
        { customType: NOTICE_TYPE, content: text, display: true, details: entry },
        { triggerTurn: false },
      );
    } catch {
      // a context of an unloaded runtime; the reply entry in the transcript still shows it
    }
  }
}

const contractChecks = async () => {
  const [{ checkReply }, { MAX_TEXT_LENGTH }] = await Promise.all([
    import("../contract/response-schema.ts"),
    import("../contract/schemas.ts"),
  ]);
  return { checkReply, MAX_TEXT_LENGTH };
};

function branchOf(ctx: ExtensionContext): BranchEntry[] | undefined {
  try {
    return ctx.sessionManager.getBranch() as unknown as BranchEntry[];
  } catch {
    return undefined; // a context of an unloaded runtime
  }
}

function injectionIndex(branch: BranchEntry[], batchId: string): number {
  return branch.findIndex(
    (e) =>
      e.type === "custom_message" &&
      e.customType === INBOUND_TYPE &&
      (e.details as InboundDetails | undefined)?.batchId === batchId,
  );
}

type TurnOutcome =
  | { ok: true; text: string }
  | { ok: false; code: "CANCELLED" | "PEER_GONE"; message: string };

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter(
      (part): part is { type: "text"; text: string } =>
        part?.type === "text" && typeof part.text === "string",
    )
    .map((part) => part.text)
    .join("");
}

/** Whether the turn after the injected prompt was aborted, failed or never answered (then: the error for its senders). */
function turnFailed(entries: BranchEntry[]): Extract<TurnOutcome, { ok: false }> | undefined {
  const assistants = entries.filter((e) => e.type === "message" && e.message?.role === "assistant");
  const last = assistants[assistants.length - 1]?.message;
  if (!last)
    return { ok: false, code: "PEER_GONE", message: "the recipient's turn ended before it answered" };
  if (last.stopReason === "aborted")
    return { ok: false, code: "CANCELLED", message: "the recipient's turn was aborted" };
  if (last.stopReason === "error")
    return {
      ok: false,
      code: "PEER_GONE",
      message: `the recipient's turn failed: ${last.errorMessage ?? "unknown error"}`,
    };
  return undefined;
}

/** The reply is the last assistant message after the injected prompt; older text is never used. */
export function replyAfter(entries: BranchEntry[]): TurnOutcome {
  const failed = turnFailed(entries);
  if (failed) return failed;
  const assistants = entries.filter((e) => e.type === "message" && e.message?.role === "assistant");
  const text = textOf(assistants[assistants.length - 1]?.message?.content).trim();
  if (!text)
    return { ok: false, code: "PEER_GONE", message: "the recipient ended its turn without a text answer" };
  return { ok: true, text };
}

/** For a prompt slipped into a running turn: the first assistant message after it that has text, if any yet. */
export function firstReplyAfter(entries: BranchEntry[]): TurnOutcome | undefined {
  for (const entry of entries) {
    if (entry.type !== "message" || entry.message?.role !== "assistant") continue;
    const message = entry.message;
    if (message.stopReason === "aborted" || message.stopReason === "error") return replyAfter([entry]);
    const text = textOf(message.content).trim();
    if (text) return { ok: true, text };
  }
  return undefined;
}

/**
 * The peer prompts an MCP agent holds. An MCP client cannot be interrupted,
 * so each prompt waits here until the agent takes it (the receive tool, or
 * an await it cuts short) and answers it with the reply tool. Nothing is
 * dropped: a prompt never taken stays held, and when the agent leaves every
 * prompt still held is settled PEER_GONE, so no sender waits for nothing.
 */
import type { ComsClient } from "../contract/client.ts";
import { checkReply } from "../contract/response-schema.ts";
import type { AgentCard, Message, ReplyResult } from "../contract/schemas.ts";
import type { SystemKind } from "../tools/names.ts";
import type { InboundView } from "../tools/peer-text.ts";

/** A blocked receive call: handed the next prompt, or told that none will come. */
interface Taker {
  give(message: Message): void;
  cancel(): void;
}

export class HeldPrompts {
  private readonly client: ComsClient;
  private readonly system: SystemKind;
  /** Arrived and not yet shown to the agent, in arrival order. */
  private readonly waiting: Message[] = [];
  /** Shown to the agent (or pushed to it) and not yet answered. */
  private readonly open = new Map<string, Message>();
  /** Blocked receive calls, first come first served. */
  private readonly takers: Taker[] = [];
  private readonly watchers = new Set<() => void>();
  private readonly arrivals = new Set<(message: Message) => void>();
  private peers: AgentCard[] = [];
  private closed = false;
  private readonly unsubscribe: Array<() => void>;

  constructor(client: ComsClient, system: SystemKind) {
    this.client = client;
    this.system = system;
    this.unsubscribe = [
      client.onInbound((message) => this.arrive(message)),
      client.onPeers((peers) => {
        this.peers = peers;
      }),
    ];
  }

  /** Prompts not yet shown to the agent. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  get depth(): number {
    return this.waiting.length + this.open.size;
  }

  /** Hear every prompt as it arrives (the channel push). Returns an unsubscribe function. */
  onArrival(listener: (message: Message) => void): () => void {
    this.arrivals.add(listener);
    return () => this.arrivals.delete(listener);
  }

  private arrive(message: Message): void {
    if (this.closed) return;
    const id = message.msg_id;
    // A redelivery (hub reconnect) of something already held is the same prompt.
    if (this.open.has(id) || this.waiting.some((m) => m.msg_id === id)) return;
    const taker = this.takers.shift();
    if (taker) {
      this.open.set(id, message);
      taker.give(message);
    } else {
      this.waiting.push(message);
      for (const watch of [...this.watchers]) watch();
    }
    for (const listener of this.arrivals) listener(message);
    this.publishDepth();
  }

  /** The next prompt not yet shown, or wait for one until the signal aborts (then null). */
  take(signal: AbortSignal): Promise<Message | null> {
    const first = this.waiting.shift();
    if (first) {
      this.open.set(first.msg_id, first);
      return Promise.resolve(first);
    }
    if (signal.aborted || this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const done = (message: Message | null) => {
        signal.removeEventListener("abort", onAbort);
        const at = this.takers.indexOf(taker);
        if (at !== -1) this.takers.splice(at, 1);
        resolve(message);
      };
      const taker: Taker = { give: done, cancel: () => done(null) };
      const onAbort = () => done(null);
      signal.addEventListener("abort", onAbort, { once: true });
      this.takers.push(taker);
    });
  }

  /** Every prompt not yet shown, now marked as shown. */
  takeAll(): Message[] {
    const all = this.waiting.splice(0);
    for (const message of all) this.open.set(message.msg_id, message);
    return all;
  }

  /** Told (once) when a prompt is waiting to be shown: at once if one already is. */
  watch(onWaiting: () => void): () => void {
    let fired = false;
    const fire = () => {
      if (fired) return;
      fired = true;
      this.watchers.delete(fire);
      onWaiting();
    };
    this.watchers.add(fire);
    if (this.waiting.length > 0) queueMicrotask(fire);
    return () => this.watchers.delete(fire);
  }

  /** Hops and chain of the prompts the agent is answering now: a send it makes continues them. */
  chain(): { hops: number; chain_id?: string } {
    const handling = [...this.open.values()];
    const hops = handling.reduce((max, m) => Math.max(max, m.hops), 0);
    const chain = handling[0]?.chain_id ?? handling[0]?.msg_id;
    return chain ? { hops, chain_id: chain } : { hops };
  }

  view(message: Message): InboundView {
    const card =
      this.peers.find((p) => p.id === message.from_id) ?? this.peers.find((p) => p.name === message.from);
    return {
      system: this.system,
      msg_id: message.msg_id,
      from: message.from,
      purpose: card?.purpose ?? "",
      ...(card?.color ? { color: card.color } : {}),
      prompt: message.prompt,
      ...(message.response_schema ? { response_schema: message.response_schema } : {}),
      ...(message.conversation_id ? { conversation_id: message.conversation_id } : {}),
      hops: message.hops,
    };
  }

  /**
   * Answer one held prompt. Throws, sending nothing, when no such prompt is
   * held or the text breaks the sender's response_schema (the agent can fix
   * it and call again). A failed settle is reported, not thrown.
   */
  async reply(
    msgId: string,
    text: string,
    replyTool: string,
  ): Promise<{ ok: boolean; to: string; text: string }> {
    const message = this.open.get(msgId) ?? this.waiting.find((m) => m.msg_id === msgId);
    if (!message)
      throw new Error(
        `BAD_INPUT: no open peer prompt has msg_id ${msgId} (already answered, or not a prompt to you)`,
      );
    let result: ReplyResult = { ok: true, text };
    if (message.response_schema) {
      const check = checkReply(text, message.response_schema);
      if (!check.ok)
        throw new Error(
          `SCHEMA_MISMATCH: ${check.message}. Nothing was sent; call ${replyTool} again with JSON that matches.`,
        );
      result = { ok: true, text, value: check.value };
    }
    // Taken out before the first await, so a second reply for the same msg_id finds nothing.
    this.forget(msgId);
    try {
      await this.client.settle(msgId, result);
      return { ok: true, to: message.from, text };
    } catch (error) {
      return { ok: false, to: message.from, text: `not sent: ${(error as Error).message}` };
    } finally {
      this.publishDepth();
    }
  }

  private forget(msgId: string): void {
    this.open.delete(msgId);
    const at = this.waiting.findIndex((m) => m.msg_id === msgId);
    if (at !== -1) this.waiting.splice(at, 1);
  }

  /** The agent leaves: every prompt it held ends PEER_GONE for its sender. */
  async release(why: string): Promise<number> {
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    for (const taker of this.takers.splice(0)) taker.cancel();
    const held = [...this.open.values(), ...this.waiting.splice(0)];
    this.open.clear();
    await Promise.all(
      held.map((m) =>
        this.client
          .settle(m.msg_id, { ok: false, code: "PEER_GONE", message: `${this.client.self.name} ${why}` })
          .catch(() => undefined),
      ),
    );
    return held.length;
  }

  private publishDepth(): void {
    try {
      this.client.updateCard({ queue_depth: this.depth });
    } catch {
      // cosmetic: the next heartbeat carries it
    }
  }
}

/**
 * A ComsClient for an agent that lives inside the hub process (an MCP
 * session on the hub's /mcp route): it calls the backend directly, as the
 * tRPC procedures would, with the same input schemas, so the same limits,
 * hop counts and outcomes apply, without a loop through HTTP.
 */
import type { AwaitOptions, ComsClient } from "../../contract/client.ts";
import { ComsError, toComsError } from "../../contract/errors.ts";
import type { Caller, ComsBackend, InboxItem } from "../../contract/router.ts";
import {
  type AgentCard,
  CardPatch,
  ListInput,
  type Message,
  type Outcome,
  RegisterInput,
  type ReplyResult,
  type SendAck,
  SendInput,
  SettleInput,
} from "../../contract/schemas.ts";
import { isPushFeed, type PushFeed } from "../../lib/push-feed.ts";
import { RecentIds } from "./ack-batcher.ts";
import { OutcomeBook } from "./outcome-book.ts";
import { PeerBook } from "./peer-book.ts";

export interface InProcessJoin {
  name: string;
  purpose?: string;
  model?: string;
  color?: string;
  explicit?: boolean;
  heartbeatMs: number;
  replyTimeoutMs: number;
}

/** Call into the backend; what it throws comes out as a ComsError, bad input as BAD_INPUT. */
async function call<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    const issues = (error as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
    if (Array.isArray(issues))
      throw new ComsError("BAD_INPUT", issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    throw toComsError(error);
  }
}

export class InProcessClient implements ComsClient {
  readonly transport = "hub" as const;
  private readonly backend: ComsBackend;
  private readonly caller: Caller;
  private card: AgentCard;
  private readonly replyTimeoutMs: number;
  private readonly outcomes = new OutcomeBook();
  private readonly peerBook: PeerBook;
  private readonly inboundHandlers = new Set<(message: Message) => void>();
  private readonly backlog: Message[] = [];
  /** Messages already handed out (bounded): a second delivery of one is not a new prompt. */
  private readonly seen = new RecentIds();
  private readonly abort = new AbortController();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private patch: CardPatch = {};
  private closed = false;

  static async join(backend: ComsBackend, opts: InProcessJoin): Promise<InProcessClient> {
    const input = await call(() =>
      RegisterInput.parse({
        name: opts.name,
        purpose: opts.purpose ?? "",
        model: opts.model ?? "",
        explicit: opts.explicit ?? false,
        ...(opts.color ? { color: opts.color } : {}),
      }),
    );
    const { card } = await call(() => backend.register(input));
    return new InProcessClient(backend, card, opts);
  }

  private constructor(backend: ComsBackend, card: AgentCard, opts: InProcessJoin) {
    this.backend = backend;
    this.card = card;
    this.caller = { id: card.id, name: card.name };
    this.replyTimeoutMs = opts.replyTimeoutMs;
    this.peerBook = new PeerBook(() => this.caller.id);
    this.openInbox();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), opts.heartbeatMs);
    this.heartbeatTimer.unref();
    void this.peerBook.refresh(() => this.list());
  }

  get self(): AgentCard {
    return this.card;
  }

  private openInbox(): void {
    const feed = this.backend.inbox(this.caller, null, this.abort.signal);
    if (isPushFeed(feed)) {
      (feed as PushFeed<InboxItem>).attach({
        next: (item) => {
          this.onItem(item);
          return true;
        },
        end: () => undefined,
      });
      this.abort.signal.addEventListener("abort", () => (feed as PushFeed<InboxItem>).detach(), {
        once: true,
      });
      return;
    }
    void (async () => {
      for await (const item of feed) this.onItem(item);
    })().catch(() => undefined);
  }

  private onItem({ event }: InboxItem): void {
    if (event.kind === "message") {
      const message = event.message;
      void this.backend.ack(this.caller, [message.msg_id]).catch(() => undefined);
      if (this.seen.has(message.msg_id)) return;
      this.seen.add(message.msg_id);
      if (this.inboundHandlers.size === 0) this.backlog.push(message);
      else for (const handler of this.inboundHandlers) handler(message);
    } else if (event.kind === "outcome") {
      void this.backend.ack(this.caller, [event.outcome.msg_id]).catch(() => undefined);
      this.outcomes.apply(event.outcome);
    } else {
      this.peerBook.event(event);
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.closed) return;
    try {
      this.card = await this.backend.heartbeat(this.caller, this.patch);
    } catch {
      // the hub is closing; the session ends with it
    }
  }

  list(opts: { include_explicit?: boolean } = {}): Promise<AgentCard[]> {
    return call(() =>
      this.backend.list(this.caller, ListInput.parse({ include_explicit: opts.include_explicit ?? false })),
    );
  }

  async send(input: SendInput): Promise<SendAck> {
    const ack = await call(() => this.backend.send(this.caller, SendInput.parse(input)));
    this.outcomes.accepted(ack.msg_id);
    return ack;
  }

  async get(msgId: string): Promise<Outcome> {
    const outcome = await call(() => this.backend.get(this.caller, msgId));
    this.outcomes.apply(outcome);
    return outcome;
  }

  async await(msgId: string, opts: AwaitOptions = {}): Promise<Outcome> {
    if (opts.signal?.aborted) throw new ComsError("CANCELLED", "cancelled");
    try {
      const now = await this.get(msgId);
      if (now.state !== "pending") return now;
    } catch (error) {
      const coms = toComsError(error);
      return { state: "error", msg_id: msgId, code: coms.code, message: coms.message };
    }
    return this.outcomes.wait(msgId, {
      timeoutMs: opts.timeoutMs ?? this.replyTimeoutMs,
      signal: opts.signal,
      poll: () => void this.get(msgId).catch(() => {}),
    });
  }

  onInbound(handler: (message: Message) => void): () => void {
    this.inboundHandlers.add(handler);
    const waiting = this.backlog.splice(0);
    if (waiting.length) queueMicrotask(() => waiting.forEach(handler));
    return () => this.inboundHandlers.delete(handler);
  }

  settle(msgId: string, result: ReplyResult): Promise<void> {
    return call(() => this.backend.settle(this.caller, SettleInput.parse({ msg_id: msgId, result })));
  }

  updateCard(patch: CardPatch): void {
    this.patch = { ...this.patch, ...CardPatch.parse(patch) };
    void this.heartbeat();
  }

  onPeers(handler: (peers: AgentCard[]) => void): () => void {
    return this.peerBook.onPeers(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    this.abort.abort();
    await this.backend.leave(this.caller).catch(() => undefined);
  }
}

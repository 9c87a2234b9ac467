import { type TRPCClient, TRPCClientError } from "@trpc/client";
import type { AwaitOptions, ComsClient, ConnectionStatus } from "../../contract/client.ts";
import { ComsError, toComsError } from "../../contract/errors.ts";
import { ulid } from "../../contract/ids.ts";
import type { ComsRouter } from "../../contract/router.ts";
import {
  type AgentCard,
  type CardPatch,
  type InboxEvent,
  MAX_TEXT_LENGTH,
  type Message,
  type Outcome,
  type ReplyResult,
  type SendAck,
  type SendInput,
} from "../../contract/schemas.ts";
import { TRPC_PATH } from "../http/routes.ts";
import { CardPresence } from "./card-presence.ts";
import { ConnectionTracker, isUnreachable, unreachableReason } from "./connection.ts";
import { HubCredentials } from "./hub-credentials.ts";
import { hubFetcher, hubTrpcClient, PLACEHOLDER } from "./hub-links.ts";
import { HubMover } from "./hub-mover.ts";
import { InboundBook } from "./inbound-book.ts";
import { openInbox } from "./inbox-stream.ts";
import { OutcomeBook } from "./outcome-book.ts";
import { PeerBook } from "./peer-book.ts";

export { connectHub, type HubConnectOptions } from "./connect-hub.ts";

const MAX_RECOVERY_DELAY_MS = 5_000;

type Subscription = { unsubscribe(): void };

export interface HubClientOptions {
  url: string;
  token: string;
  secretPath: string | undefined;
  project: string;
  heartbeatMs: number;
  replyTimeoutMs: number;
  registration: { name: string; purpose: string; model: string; explicit: boolean; color?: string };
  /** Where a discovered hub is published now (undefined for a URL someone gave us). */
  discover?: () => string | undefined;
  /** Several hubs of the project, in this client's order (its preferred one first): see hub-mover.ts. */
  urls?: string[];
}

export class HubClient implements ComsClient {
  readonly transport = "hub" as const;
  /** The hub's base URL; follows the discovery file when the hub comes back elsewhere. */
  url: string;
  private readonly opts: HubClientOptions;
  private readonly trpc: TRPCClient<ComsRouter>;
  private readonly credentials: HubCredentials;
  /** What the hub offers beyond the base contract (its register result); empty for an older hub. */
  private features: ReadonlySet<string> = new Set();
  /** The inbox stream is open (its `connected` came and it has not ended; a lost one marks the connection unreachable). */
  private streamOpen = false;
  private subscription: Subscription | undefined;
  private lastEventId: string | null = null;
  private recovering: Promise<void> | undefined;
  private closed = false;
  private readonly inbound = new InboundBook(
    (ids) => this.trpc.messages.ack.mutate({ msg_ids: ids }),
    () => this.features.has("ride-acks"),
  );
  private readonly presence = new CardPresence({
    send: (patch) => this.sendHeartbeat(patch),
    streamVouches: () =>
      this.features.has("stream-presence") && this.streamOpen && this.connection.state === "connected",
  });
  private readonly peerBook = new PeerBook(() => this.credentials.agentId);
  /**
   * Someone listens to peers changes (onPeers): only then does the stream take
   * them and is the list fetched. A crowd of clients that never look costs the
   * hub no presence traffic when it grows.
   */
  private watchingPeers = false;
  private readonly outcomes = new OutcomeBook();
  private readonly tracker = new ConnectionTracker();
  /** Aborted when the client leaves a hub that went silent: calls still waiting on it are retried elsewhere. */
  private leaving = new AbortController();
  private readonly mover: HubMover | undefined;

  constructor(opts: HubClientOptions) {
    this.opts = opts;
    this.url = opts.url.replace(/\/+$/, "");
    this.credentials = new HubCredentials(opts.token, opts.secretPath);
    this.trpc = hubTrpcClient({
      url: () => this.url,
      headers: () => this.credentials.headers(),
      onAnswer: () => this.tracker.contact(),
      onUnreachable: (error) => this.tracker.unreachable(unreachableReason(error)),
      leaving: () => this.leaving.signal,
    });
    if (opts.urls && opts.urls.length > 1) {
      const client = this;
      this.mover = new HubMover(
        opts.urls,
        {
          get url() {
            return client.url;
          },
          set url(url: string) {
            client.url = url;
          },
          movedBack: () => {
            if (client.subscription) client.subscribe();
          },
          busy: () => client.closed || client.recovering !== undefined,
        },
        opts.heartbeatMs,
      );
    }
  }

  /** Whether the hub can be reached now, since when, the last contact and the last failure. */
  get connection(): ConnectionStatus {
    return this.tracker.status;
  }

  /** Hear each change of `connection` (connected, unreachable, closed). */
  onConnection(listener: (status: ConnectionStatus) => void): () => void {
    return this.tracker.onChange(listener);
  }

  get self(): AgentCard {
    const card = this.presence.card;
    if (!card) throw new ComsError("PEER_GONE", "not registered with the hub yet");
    return card;
  }

  /** Register, open the inbox stream, start heartbeats. */
  async start(): Promise<void> {
    await this.withTokenRetry(() => this.register());
    this.subscribe();
    this.presence.start(this.opts.heartbeatMs);
    void this.refreshPeers();
  }

  private async register(): Promise<void> {
    const reg = this.opts.registration;
    const resume = this.credentials.resume;
    const card = this.presence.card;
    const result = await this.trpc.agents.register.mutate({
      ...reg,
      name: card?.name ?? reg.name,
      project: this.opts.project,
      presence: "stream",
      ...(card ? { model: card.model } : {}),
      ...(resume ? { resume } : {}),
    });
    this.credentials.registered(result.card.id, result.agent_token);
    this.features = new Set(result.features ?? []);
    this.presence.registered(result.card);
  }

  /** A 401 may mean the hub token was rotated: re-read the secret once and try again. */
  private async withTokenRetry<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (toComsError(error).code !== "UNAUTHORIZED" || !this.credentials.reread()) throw toComsError(error);
      try {
        return await fn();
      } catch (again) {
        throw toComsError(again);
      }
    }
  }

  private subscribe(): void {
    this.unsubscribe();
    const subscription = openInbox({
      url: `${PLACEHOLDER}${TRPC_PATH}/messages.inbox`,
      headers: () => this.credentials.headers(),
      lastEventId: this.lastEventId,
      peers: this.watchingPeers,
      // Until the hub announces its own deadline (it pings every 15 s, a clustered hub faster).
      inactivityMs: 40_000,
      fetch: hubFetcher(() => this.url, false),
      onEvent: (id, event) => {
        if (this.subscription !== subscription) return;
        this.tracker.contact();
        this.onEvent(id, event);
      },
      onConnected: () => {
        if (this.subscription !== subscription) return;
        this.streamOpen = true;
        this.tracker.contact();
      },
      // The stream dropped and could not be opened again: the hub is down (or the network is); try another.
      onLost: (reason) => {
        if (this.subscription !== subscription) return;
        this.tracker.unreachable(reason);
        void this.moveStream(subscription);
      },
      // Nothing, not even a ping, within the hub's deadline: it is hung. Leave it, with what waits on it.
      onSilent: (reason) => {
        if (this.subscription !== subscription) return;
        this.tracker.unreachable(reason);
        this.abandonCalls(reason);
        void this.moveStream(subscription);
      },
      // Refused, failed or ended by the hub (it ends streams when it shuts down): recover and come back.
      onEnd: () => {
        if (this.subscription !== subscription) return;
        this.streamOpen = false;
        if (!this.closed) void this.recover();
      },
    });
    this.subscription = subscription;
  }

  /** Move to another hub and reopen the stream there (its own retry may already be waiting on the old one). */
  private async moveStream(subscription: Subscription): Promise<void> {
    if ((await this.rediscover()) && this.subscription === subscription && !this.closed) this.subscribe();
  }

  private unsubscribe(): void {
    const current = this.subscription;
    this.subscription = undefined;
    this.streamOpen = false;
    current?.unsubscribe();
  }

  /**
   * After the stream failed for good (hub restarted without our agent, token
   * rotated, hub stopped): re-register with the same identity and resume the
   * stream from the last event id, retrying with backoff until it works.
   */
  private recover(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.recovering ??= (async () => {
      this.unsubscribe();
      let delay = 100;
      let resumeRefused = 0;
      while (!this.closed) {
        try {
          await this.register();
          if (this.closed) return;
          this.subscribe();
          void this.refreshPeers();
          // Outcomes may have arrived while the stream was down; pending awaits re-check.
          for (const msgId of this.outcomes.awaited()) void this.get(msgId).catch(() => {});
          return;
        } catch (error) {
          const coms = toComsError(error);
          if (isUnreachable(error) && (await this.rediscover())) continue;
          // A hub failing over answers 503 after holding the request a moment: ask again soon, without backing off.
          if (httpStatusOf(error) === 503) {
            await sleep(250);
            continue;
          }
          if (coms.code === "UNAUTHORIZED") {
            if (this.credentials.reread()) continue;
            // The hub knows this id under another credential: start over as a new agent.
            if (++resumeRefused >= 3) this.credentials.forget();
          }
          await sleep(delay);
          delay = Math.min(delay * 2, MAX_RECOVERY_DELAY_MS);
        }
      }
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  private onEvent(id: string, event: InboxEvent): void {
    this.lastEventId = id;
    if (event.kind === "message") {
      this.inbound.message(event.message);
    } else if (event.kind === "outcome") {
      this.inbound.outcome(event.outcome.msg_id);
      this.outcomes.apply(event.outcome);
    } else {
      this.peerBook.event(event);
    }
  }

  private refreshPeers(): Promise<void> {
    if (!this.watchingPeers) return Promise.resolve();
    return this.peerBook.refresh(() => this.trpc.agents.list.query({ include_explicit: false }));
  }

  /** The card presence's heartbeat: the card the hub now holds, or undefined when it did not go. */
  private async sendHeartbeat(patch: CardPatch): Promise<AgentCard | undefined> {
    if (this.closed || !this.credentials.agentId) return undefined;
    try {
      return await this.inbound.carrying((riders) =>
        this.trpc.agents.heartbeat.mutate({ ...patch, ...riders }),
      );
    } catch (error) {
      // An unreachable hub has already been recorded by the links (connection → unreachable).
      if (toComsError(error).code === "UNAUTHORIZED" || (isUnreachable(error) && (await this.rediscover()))) {
        void this.recover();
      }
      return undefined;
    }
  }

  /** Another of several hubs, or a hub that died and was started again elsewhere (its discovery file). */
  private async rediscover(): Promise<boolean> {
    if (this.mover) return this.mover.moveOn();
    const url = this.opts.discover?.()?.replace(/\/+$/, "");
    if (!url || url === this.url) return false;
    this.url = url;
    return true;
  }

  /** Calls still waiting on a hub that went silent fail now (the callers that retry do so elsewhere). */
  private abandonCalls(reason: string): void {
    const left = this.leaving;
    this.leaving = new AbortController();
    left.abort(new Error(`left a hub that stopped answering (${reason})`));
  }

  /**
   * Call the hub. UNAUTHORIZED: recover (token re-read, re-register) and try
   * once more. Unreachable (hub restarting): retry with backoff up to
   * `attempts` times. Whatever still fails is thrown as a ComsError.
   */
  private async rpc<T>(fn: () => Promise<T>, attempts = 1): Promise<T> {
    let delay = 200;
    let recovered = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (this.closed) throw toComsError(error);
        if (!recovered && toComsError(error).code === "UNAUTHORIZED") {
          recovered = true;
          await this.recover();
          continue;
        }
        if (!isUnreachable(error) || attempt >= attempts) throw toComsError(error);
        if (await this.rediscover()) {
          await this.recover();
          continue;
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 4_000);
      }
    }
  }

  async list(opts: { include_explicit?: boolean } = {}): Promise<AgentCard[]> {
    return this.rpc(() => this.trpc.agents.list.query({ include_explicit: opts.include_explicit ?? false }));
  }

  async send(input: SendInput): Promise<SendAck> {
    if (input.prompt.length > MAX_TEXT_LENGTH) {
      throw new ComsError(
        "TOO_LARGE",
        `prompt is ${input.prompt.length} characters; at most ${MAX_TEXT_LENGTH}`,
      );
    }
    // A client-chosen id makes a retried send idempotent on the hub.
    const withId = { ...input, msg_id: input.msg_id ?? ulid() };
    const ack = await this.inbound.carrying((riders) =>
      this.rpc(() => this.trpc.messages.send.mutate({ ...withId, ...riders }), 4),
    );
    this.outcomes.accepted(ack.msg_id);
    return ack;
  }

  async get(msgId: string): Promise<Outcome> {
    const known = this.outcomes.known(msgId);
    if (known && known.state !== "pending") return known;
    try {
      const outcome = await this.trpc.messages.get.query({ msg_id: msgId });
      this.outcomes.apply(outcome);
      return this.outcomes.known(msgId) ?? outcome;
    } catch (error) {
      // Non-blocking even when the hub is unreachable: answer from what we know.
      if (known && isUnreachable(error)) return known;
      if (toComsError(error).code === "UNAUTHORIZED" && !this.closed) {
        await this.recover();
        return this.rpc(() => this.trpc.messages.get.query({ msg_id: msgId }));
      }
      throw toComsError(error);
    }
  }

  async await(msgId: string, opts: AwaitOptions = {}): Promise<Outcome> {
    const signal = opts.signal;
    if (signal?.aborted) throw new ComsError("CANCELLED", "cancelled");
    try {
      const now = await this.get(msgId);
      if (now.state !== "pending") return now;
    } catch (error) {
      const coms = toComsError(error);
      if (!isUnreachable(error))
        return { state: "error", msg_id: msgId, code: coms.code, message: coms.message };
    }
    if (signal?.aborted) throw new ComsError("CANCELLED", "cancelled while waiting for the reply");
    const timeoutMs = opts.timeoutMs ?? this.opts.replyTimeoutMs;
    return this.outcomes.wait(msgId, {
      timeoutMs,
      signal,
      poll: () => void this.get(msgId).catch(() => {}),
      lastLook: () => this.get(msgId),
    });
  }

  onInbound(handler: (message: Message) => void): () => void {
    return this.inbound.onInbound(handler);
  }

  async settle(msgId: string, result: ReplyResult): Promise<void> {
    // The reply must reach the hub: keep trying through a hub restart.
    await this.inbound.settle(msgId, (riders) =>
      this.rpc(() => this.trpc.messages.settle.mutate({ msg_id: msgId, result, ...riders }), 8),
    );
  }

  /** Tell the hub at once when something on the card changed; an unchanged patch costs nothing. */
  updateCard(patch: CardPatch): void {
    this.presence.update(patch);
  }

  onPeers(handler: (peers: AgentCard[]) => void): () => void {
    if (!this.watchingPeers) {
      this.watchingPeers = true;
      // Reopen the stream with peers changes (it resumes by its last event id), then fetch the list.
      if (this.subscription && !this.recovering) this.subscribe();
      void this.refreshPeers();
    }
    return this.peerBook.onPeers(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.inbound.flush().catch(() => {});
    this.closed = true;
    this.tracker.close();
    this.presence.stop();
    this.mover?.close();
    this.unsubscribe();
    this.outcomes.cancelAll("client closed");
    if (this.credentials.agentId) {
      let timer: NodeJS.Timeout | undefined;
      const giveUp = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 2_000);
      });
      await Promise.race([this.trpc.agents.leave.mutate().catch(() => {}), giveUp]);
      clearTimeout(timer);
    }
  }
}

function httpStatusOf(error: unknown): number | undefined {
  return error instanceof TRPCClientError
    ? (error.data as { httpStatus?: number } | undefined)?.httpStatus
    : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The hub side of ComsClient: a typed tRPC client over HTTP (batched calls)
 * and SSE (the inbox stream), carrying the hub token and this agent's
 * credential in headers. It registers, heartbeats, keeps the inbox open,
 * acks what it receives, and after a hub restart or a token rotation it
 * re-registers with the same identity and resumes the stream by itself.
 */
import { randomBytes } from "node:crypto";
import {
  createTRPCClient,
  httpBatchLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  type TRPCClient,
  TRPCClientError,
  type TRPCLink,
} from "@trpc/client";
import { observable } from "@trpc/server/observable";
import type { AwaitOptions, ComsClient } from "../../contract/client.ts";
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
import { hubSettings } from "../../lib/env.ts";
import { projectFromCwd } from "../../lib/project.ts";
import { wireTransformer } from "../../lib/wire-transformer.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../http/auth.ts";
import { TRPC_PATH } from "../http/routes.ts";
import { hubPaths } from "../paths.ts";
import { readSecret } from "../secret.ts";
import { AckBatcher, RecentIds } from "./ack-batcher.ts";
import { readDiscovery } from "./discovery.ts";
import { hubRotation, parseHubUrls, startOnFirst } from "./endpoints.ts";
import { FetchEventSource } from "./event-source.ts";
import { openInbox } from "./inbox-stream.ts";

export interface HubConnectOptions {
  /** Hub base URL (http://host:port or https://…), or several comma-separated (hubs of one project, tried in turn); default PI_COMS_NET_SERVER_URL, else the project's discovery file. */
  url?: string;
  /** Hub token; default PI_COMS_NET_AUTH_TOKEN, else the project's server.secret.json. */
  token?: string;
  project?: string;
  cwd?: string;
  name?: string;
  purpose?: string;
  color?: string;
  explicit?: boolean;
  model?: string;
  env?: NodeJS.ProcessEnv;
}

const REQUEST_TIMEOUT_MS = 15_000;
const MAX_RECOVERY_DELAY_MS = 5_000;
const PLACEHOLDER = "http://pi-coms-hub.invalid";

type Subscription = { unsubscribe(): void };

interface Waiter {
  resolve(outcome: Outcome): void;
}

export async function connectHub(opts: HubConnectOptions = {}): Promise<HubClient> {
  const env = opts.env ?? process.env;
  const settings = hubSettings(env);
  const project = opts.project ?? projectFromCwd(opts.cwd);
  const secretPath = hubPaths(project, env).secret;
  const url = opts.url ?? settings.serverUrl ?? readDiscovery(project, env)?.url;
  if (!url) {
    throw new ComsError(
      "PEER_GONE",
      `no hub found for project ${project}: start one (pi-coms-hub, or /coms-net start) or give its URL`,
    );
  }
  const explicitToken = opts.token ?? settings.token;
  const token = explicitToken ?? readSecret(secretPath);
  if (!token) {
    throw new ComsError(
      "UNAUTHORIZED",
      `no hub token: set PI_COMS_NET_AUTH_TOKEN, pass a token, or run where ${secretPath} exists`,
    );
  }
  const urls = parseHubUrls(url);
  const rotate = hubRotation(urls);
  const client: HubClient = new HubClient({
    url: urls[0] ?? url,
    token,
    // A token someone handed us cannot be refreshed from a file; a discovered one can.
    // A token or URL that is the project's own (from its files, even if passed back in by the caller)
    // may be refreshed from those files; one given from elsewhere (a remote hub) stays as given.
    secretPath:
      explicitToken === undefined || explicitToken === readSecret(secretPath) ? secretPath : undefined,
    ...(urls.length > 1
      ? { discover: () => rotate(client.url) }
      : url === readDiscovery(project, env)?.url
        ? { discover: () => readDiscovery(project, env)?.url }
        : {}),
    project,
    heartbeatMs: settings.heartbeatMs,
    replyTimeoutMs: settings.messageTtlMs,
    registration: {
      name: opts.name ?? `agent-${randomBytes(3).toString("hex")}`,
      purpose: opts.purpose ?? "",
      model: opts.model ?? "",
      explicit: opts.explicit ?? false,
      ...(opts.color ? { color: opts.color } : {}),
    },
  });
  try {
    await startOnFirst(client, urls);
  } catch (error) {
    const tls = tlsFailure(error);
    if (!tls) throw error;
    throw new ComsError(
      "PEER_GONE",
      `cannot verify the TLS certificate of the hub at ${url} (${tls}); for a self-signed hub ` +
        "certificate, start this process with NODE_EXTRA_CA_CERTS=<path to that certificate>",
      { cause: error },
    );
  }
  return client;
}

/** The TLS verification error code somewhere in an error's cause chain (fetch wraps it twice). */
function tlsFailure(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

interface HubClientOptions {
  url: string;
  token: string;
  secretPath: string | undefined;
  project: string;
  heartbeatMs: number;
  replyTimeoutMs: number;
  registration: { name: string; purpose: string; model: string; explicit: boolean; color?: string };
  /** Where a discovered hub is published now (undefined for a URL someone gave us). */
  discover?: () => string | undefined;
}

export class HubClient implements ComsClient {
  readonly transport = "hub" as const;
  /** The hub's base URL; follows the discovery file when the hub comes back elsewhere. */
  url: string;
  private readonly opts: HubClientOptions;
  private readonly trpc: TRPCClient<ComsRouter>;
  private token: string;
  private agentId: string | undefined;
  private agentToken: string | undefined;
  private card: AgentCard | undefined;
  private patch: CardPatch = {};
  private subscription: Subscription | undefined;
  private lastEventId: string | null = null;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private recovering: Promise<void> | undefined;
  private closed = false;
  private readonly inboundHandlers = new Set<(message: Message) => void>();
  private readonly backlog: Message[] = [];
  /** Inbound messages handed out and not settled yet (also the duplicate filter). */
  private readonly inbound = new Map<string, Message>();
  private readonly peerHandlers = new Set<(peers: AgentCard[]) => void>();
  private peers: AgentCard[] | undefined;
  private readonly peerMap = new Map<string, AgentCard>();
  /** Peers events that arrived while a list() was in flight, re-applied on top of its (older) answer. */
  private peerEventsDuringList: Array<Extract<InboxEvent, { kind: "peers" }>> | undefined;
  /** What this agent sent, as far as it knows: pending until an outcome event arrives. */
  private readonly outcomes = new Map<string, Outcome>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly acks = new AckBatcher((ids) => this.trpc.messages.ack.mutate({ msg_ids: ids }));
  /** Settled inbound ids: a late redelivery of one is acked but not handed out again. */
  private readonly settled = new RecentIds();
  private inflight = 0;
  private headerCache:
    | {
        token: string;
        id: string | undefined;
        agentToken: string | undefined;
        headers: Record<string, string>;
      }
    | undefined;

  constructor(opts: HubClientOptions) {
    this.opts = opts;
    this.url = opts.url.replace(/\/+$/, "");
    this.token = opts.token;
    // Links get a fixed placeholder; the fetch below points it at the current hub URL.
    const endpoint = `${PLACEHOLDER}${TRPC_PATH}`;
    const headers = () => this.headers();
    const hubFetch = (input: RequestInfo | URL, init?: RequestInit) =>
      timedFetch(String(input).replace(PLACEHOLDER, this.url), init);
    this.trpc = createTRPCClient<ComsRouter>({
      links: [
        // Calls made while another is in flight are batched (throughput); a lone call goes at once (latency).
        (() =>
          ({ op, next }) => {
            if (op.type === "subscription") return next(op);
            return observable((observer) => {
              const batch = this.inflight > 0;
              this.inflight++;
              let done = false;
              const finish = () => {
                if (!done) this.inflight--;
                done = true;
              };
              const sub = next({ ...op, context: { ...op.context, batch } }).subscribe({
                next: (value) => observer.next(value),
                error: (error) => {
                  finish();
                  observer.error(error);
                },
                complete: () => {
                  finish();
                  observer.complete();
                },
              });
              return () => {
                finish();
                sub.unsubscribe();
              };
            });
          }) satisfies TRPCLink<ComsRouter>,
        splitLink({
          condition: (op) => op.type === "subscription",
          true: httpSubscriptionLink({
            url: endpoint,
            transformer: wireTransformer,
            EventSource: FetchEventSource,
            eventSourceOptions: () => ({
              headers: () => this.headers(),
              // The hub pings every 15 s: silence for longer means a dead link, so reconnect and resume.
              inactivityMs: 40_000,
              fetch: (input: RequestInfo | URL, init?: RequestInit) =>
                fetch(String(input).replace(PLACEHOLDER, this.url), init),
            }),
          }),
          false: splitLink({
            condition: (op) => op.context.batch === true,
            true: httpBatchLink({
              url: endpoint,
              transformer: wireTransformer,
              maxItems: 50,
              headers,
              fetch: hubFetch,
            }),
            false: httpLink({ url: endpoint, transformer: wireTransformer, headers, fetch: hubFetch }),
          }),
        }),
      ],
    });
  }

  get self(): AgentCard {
    if (!this.card) throw new ComsError("PEER_GONE", "not registered with the hub yet");
    return this.card;
  }

  /** The request headers, rebuilt only when the token or the agent credential changed (read per request). */
  private headers(): Record<string, string> {
    const cache = this.headerCache;
    if (
      cache &&
      cache.token === this.token &&
      cache.id === this.agentId &&
      cache.agentToken === this.agentToken
    ) {
      return cache.headers;
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (this.agentId && this.agentToken) {
      headers[AGENT_ID_HEADER] = this.agentId;
      headers[AGENT_TOKEN_HEADER] = this.agentToken;
    }
    this.headerCache = { token: this.token, id: this.agentId, agentToken: this.agentToken, headers };
    return headers;
  }

  /** Register, open the inbox stream, start heartbeats. */
  async start(): Promise<void> {
    await this.withTokenRetry(() => this.register());
    this.subscribe();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
    void this.refreshPeers();
  }

  private async register(): Promise<void> {
    const reg = this.opts.registration;
    const resume =
      this.agentId && this.agentToken ? { id: this.agentId, agent_token: this.agentToken } : undefined;
    const result = await this.trpc.agents.register.mutate({
      ...reg,
      name: this.card?.name ?? reg.name,
      project: this.opts.project,
      ...(this.card ? { model: this.card.model } : {}),
      ...(resume ? { resume } : {}),
    });
    this.agentId = result.card.id;
    this.agentToken = result.agent_token;
    this.card = result.card;
    if (Object.keys(this.patch).length > 0) void this.heartbeat();
  }

  /** A 401 may mean the hub token was rotated: re-read the secret once and try again. */
  private async withTokenRetry<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (toComsError(error).code !== "UNAUTHORIZED" || !this.rereadToken()) throw toComsError(error);
      try {
        return await fn();
      } catch (again) {
        throw toComsError(again);
      }
    }
  }

  private rereadToken(): boolean {
    if (!this.opts.secretPath) return false;
    const token = readSecret(this.opts.secretPath);
    if (!token || token === this.token) return false;
    this.token = token;
    return true;
  }

  private subscribe(): void {
    this.unsubscribe();
    const subscription = openInbox({
      url: `${PLACEHOLDER}${TRPC_PATH}/messages.inbox`,
      headers: () => this.headers(),
      lastEventId: this.lastEventId,
      // The hub pings every 15 s: silence for longer means a dead link, so reconnect and resume.
      inactivityMs: 40_000,
      fetch: (input: RequestInfo | URL, init?: RequestInit) =>
        fetch(String(input).replace(PLACEHOLDER, this.url), init),
      onEvent: (id, event) => {
        if (this.subscription === subscription) this.onEvent(id, event);
      },
      // Refused, failed or ended by the hub (it ends streams when it shuts down): recover and come back.
      onEnd: () => {
        if (this.subscription === subscription && !this.closed) void this.recover();
      },
    });
    this.subscription = subscription;
  }

  private unsubscribe(): void {
    const current = this.subscription;
    this.subscription = undefined;
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
          for (const msgId of this.waiters.keys()) void this.get(msgId).catch(() => {});
          return;
        } catch (error) {
          const coms = toComsError(error);
          if (isUnreachable(error) && this.rediscover()) continue;
          if (coms.code === "UNAUTHORIZED") {
            if (this.rereadToken()) continue;
            // The hub knows this id under another credential: start over as a new agent.
            if (++resumeRefused >= 3) {
              this.agentId = undefined;
              this.agentToken = undefined;
            }
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
      const message = event.message;
      const id = message.msg_id;
      if (this.inbound.has(id) || this.settled.has(id)) {
        // Already handed out (a redelivery after a reconnect): ack again, never inject twice.
        if (!this.settled.has(id)) this.acks.add(id);
        return;
      }
      this.acks.add(id);
      this.inbound.set(id, message);
      if (this.inboundHandlers.size === 0) this.backlog.push(message);
      else for (const handler of this.inboundHandlers) handler(message);
    } else if (event.kind === "outcome") {
      this.acks.add(event.outcome.msg_id);
      this.applyOutcome(event.outcome);
    } else {
      this.peerEventsDuringList?.push(event);
      this.applyPeers(event);
    }
  }

  private applyOutcome(outcome: Outcome): void {
    const known = this.outcomes.get(outcome.msg_id);
    if (known && known.state !== "pending" && outcome.state === "pending") return;
    this.outcomes.set(outcome.msg_id, outcome);
    if (outcome.state === "pending") return;
    for (const waiter of this.waiters.get(outcome.msg_id) ?? []) waiter.resolve(outcome);
    this.waiters.delete(outcome.msg_id);
  }

  private applyPeers(event: Extract<InboxEvent, { kind: "peers" }>): void {
    if (!event.delta) this.peerMap.clear();
    for (const id of event.removed ?? []) this.peerMap.delete(id);
    for (const card of event.agents) if (card.id !== this.agentId) this.peerMap.set(card.id, card);
    this.peers = [...this.peerMap.values()];
    for (const handler of this.peerHandlers) handler(this.peers);
  }

  private async refreshPeers(): Promise<void> {
    this.peerEventsDuringList = [];
    try {
      const agents = await this.trpc.agents.list.query({ include_explicit: false });
      const later = this.peerEventsDuringList;
      this.peerEventsDuringList = undefined;
      this.applyPeers({ kind: "peers", agents });
      for (const event of later) if (event.delta) this.applyPeers(event);
    } catch {
      // the next peers event or reconnect will bring them
      this.peerEventsDuringList = undefined;
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.closed || !this.agentId) return;
    try {
      this.card = await this.trpc.agents.heartbeat.mutate(this.patch);
      if (this.acks.size > 0) void this.acks.flush();
    } catch (error) {
      if (toComsError(error).code === "UNAUTHORIZED" || (isUnreachable(error) && this.rediscover())) {
        void this.recover();
      }
    }
  }

  /** A hub that died may have been started again elsewhere (another port): follow its discovery file. */
  private rediscover(): boolean {
    const url = this.opts.discover?.()?.replace(/\/+$/, "");
    if (!url || url === this.url) return false;
    this.url = url;
    return true;
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
        if (this.rediscover()) {
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
    const ack = await this.rpc(() => this.trpc.messages.send.mutate(withId), 4);
    if (!this.outcomes.has(ack.msg_id)) {
      this.outcomes.set(ack.msg_id, { state: "pending", msg_id: ack.msg_id, delivered: false });
    }
    return ack;
  }

  async get(msgId: string): Promise<Outcome> {
    const known = this.outcomes.get(msgId);
    if (known && known.state !== "pending") return known;
    try {
      const outcome = await this.trpc.messages.get.query({ msg_id: msgId });
      this.applyOutcome(outcome);
      return this.outcomes.get(msgId) ?? outcome;
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
    return new Promise<Outcome>((resolve, reject) => {
      const set = this.waiters.get(msgId) ?? new Set<Waiter>();
      this.waiters.set(msgId, set);
      const finish = () => {
        clearTimeout(timer);
        clearInterval(poll);
        signal?.removeEventListener("abort", onAbort);
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(msgId) === set) this.waiters.delete(msgId);
      };
      const waiter: Waiter = {
        resolve: (outcome) => {
          finish();
          resolve(outcome);
        },
      };
      const onAbort = () => {
        finish();
        reject(new ComsError("CANCELLED", "cancelled while waiting for the reply"));
      };
      const timer = setTimeout(
        () =>
          waiter.resolve({
            state: "error",
            msg_id: msgId,
            code: "TIMEOUT",
            message: `no reply within ${timeoutMs} ms`,
          }),
        timeoutMs,
      );
      // The stream brings the outcome; a slow poll covers a stream that is down for a while.
      const poll = setInterval(() => void this.get(msgId).catch(() => {}), 5_000);
      poll.unref();
      signal?.addEventListener("abort", onAbort);
      set.add(waiter);
    });
  }

  onInbound(handler: (message: Message) => void): () => void {
    this.inboundHandlers.add(handler);
    const waiting = this.backlog.splice(0);
    for (const message of waiting) handler(message);
    return () => {
      this.inboundHandlers.delete(handler);
    };
  }

  async settle(msgId: string, result: ReplyResult): Promise<void> {
    // The reply must reach the hub: keep trying through a hub restart.
    // Settling makes it final on the hub: no ack needed any more.
    this.acks.drop(msgId);
    await this.rpc(() => this.trpc.messages.settle.mutate({ msg_id: msgId, result }), 8);
    this.settled.add(msgId);
    this.inbound.delete(msgId);
  }

  updateCard(patch: CardPatch): void {
    this.patch = { ...this.patch, ...patch };
    if (this.card) this.card = { ...this.card, ...patch };
    void this.heartbeat();
  }

  onPeers(handler: (peers: AgentCard[]) => void): () => void {
    this.peerHandlers.add(handler);
    const current = this.peers;
    if (current) queueMicrotask(() => this.peerHandlers.has(handler) && handler(current));
    return () => {
      this.peerHandlers.delete(handler);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.acks.flush().catch(() => {});
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    this.unsubscribe();
    for (const [msgId, set] of this.waiters) {
      for (const waiter of set)
        waiter.resolve({ state: "error", msg_id: msgId, code: "CANCELLED", message: "client closed" });
    }
    this.waiters.clear();
    if (this.agentId) {
      let timer: NodeJS.Timeout | undefined;
      const giveUp = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 2_000);
      });
      await Promise.race([this.trpc.agents.leave.mutate().catch(() => {}), giveUp]);
      clearTimeout(timer);
    }
  }
}

/** A failure to reach the hub at all (network, timeout, 5xx), as opposed to an answer from it. */
function isUnreachable(error: unknown): boolean {
  if (error instanceof ComsError) return false;
  if (error instanceof TRPCClientError) {
    const status = (error.data as { httpStatus?: number } | undefined)?.httpStatus;
    return error.data === undefined || error.data === null || (status !== undefined && status >= 502);
  }
  return true;
}

/** Every call has a deadline: a hub that stops answering must not hang a caller. */
/** One shared reason: the timer also fires for calls long done, and need not build an error each time. */
const TIMED_OUT = new DOMException("the hub did not answer in time", "TimeoutError");

function timedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  // One controller and one timer (left to run: it also bounds reading the body), instead of AbortSignal.any.
  const controller = new AbortController();
  setTimeout(() => controller.abort(TIMED_OUT), REQUEST_TIMEOUT_MS).unref();
  const outer = init?.signal;
  if (outer) {
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener("abort", () => controller.abort(outer.reason), { once: true });
  }
  return fetch(input, { ...init, signal: controller.signal });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

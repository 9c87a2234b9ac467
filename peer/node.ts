/**
 * A P2P coms node: this session's entry in the project registry, its socket
 * server, and typed tRPC clients to the peers it talks to. It implements the
 * transport-neutral ComsClient the plugin and scripts use.
 *
 *   const node = await startP2P({ name: "coder", purpose: "implements features" });
 *   const ack = await node.send({ to: "reviewer", prompt: "please review" });
 *   const outcome = await node.await(ack.msg_id, { timeoutMs: 60_000 });
 */
import { type FSWatcher, rmSync, watch } from "node:fs";
import { createTRPCClient, type TRPCClient } from "@trpc/client";
import type { AwaitOptions, ComsClient } from "../contract/client.ts";
import { ComsError, comsError, SELF_MESSAGE, toComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { Caller, ComsBackend, ComsRouter } from "../contract/router.ts";
import {
  type AgentCard,
  AgentName,
  CardPatch,
  Color,
  MAX_TEXT_LENGTH,
  type Message,
  type Outcome,
  ProjectName,
  ReplyResult,
  type SendAck,
  SendInput,
} from "../contract/schemas.ts";
import { type P2PSettings, p2pSettings } from "../lib/env.ts";
import { projectFromCwd } from "../lib/project.ts";
import { newToken, tokensEqual } from "../lib/secrets.ts";
import { Inbox } from "./inbox.ts";
import { IpcChannel, ipcLink } from "./link.ts";
import { Outbox } from "./outbox.ts";
import { OutcomeFollower, type Peer } from "./outcome-follower.ts";
import { socketPathFor } from "./paths.ts";
import { cardOf, entryAlive, Registry, type RegistryEntry } from "./registry.ts";
import type { Retained } from "./retention.ts";
import { type PeerServer, startPeerServer } from "./server.ts";

export interface P2PStartOptions {
  /** Wanted name; a taken one gets a numeric suffix. Generated when omitted. */
  name?: string;
  purpose?: string;
  /** Discovery namespace; defaults to one derived from `cwd`. */
  project?: string;
  color?: string;
  /** Hidden from listings unless include_explicit; still reachable by exact name. */
  explicit?: boolean;
  model?: string;
  cwd?: string;
  /** Where PI_COMS_DIR and the PI_COMS_* settings are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** How long one socket call (send, hello, ping) may take before it fails with TIMEOUT. */
const CALL_TIMEOUT_MS = 10_000;

export async function startP2P(opts: P2PStartOptions = {}): Promise<P2PNode> {
  const env = opts.env ?? process.env;
  const settings = p2pSettings(env);
  const project = ProjectName.parse(opts.project ?? projectFromCwd(opts.cwd));
  const wanted = AgentName.parse(opts.name ?? generatedName());
  const color = opts.color === undefined ? undefined : Color.parse(opts.color);
  const registry = new Registry(project, env);
  registry.ensure();
  await registry.prune();

  const id = ulid();
  const socket = socketPathFor(id, env);
  const node = new P2PNode(registry, settings, env);
  const server = await startPeerServer({ socketPath: socket, backend: node.backend });
  try {
    const entry = await registry.claim(wanted, (name) => ({
      id,
      name,
      purpose: (opts.purpose ?? "").slice(0, 500),
      model: (opts.model ?? "").slice(0, 200),
      ...(color !== undefined && { color }),
      explicit: opts.explicit ?? false,
      project,
      context_used_pct: null,
      queue_depth: 0,
      pid: process.pid,
      socket,
      started_at: Date.now(),
      token: newToken(),
    }));
    node.begin(entry, server);
    return node;
  } catch (error) {
    await server.close();
    throw error;
  }
}

export class P2PNode implements ComsClient {
  readonly transport = "p2p" as const;
  readonly backend: ComsBackend;
  private readonly registry: Registry;
  private readonly settings: P2PSettings;
  private entry!: RegistryEntry;
  /** The public part of `entry`, rebuilt only when the entry changes. */
  private card!: AgentCard;
  private ownQueueDepth = false;
  private server!: PeerServer;
  private readonly inbox: Inbox;
  private readonly outbox: Outbox;
  private readonly follower: OutcomeFollower;
  private readonly peers = new Map<string, Peer>();
  /**
   * Entries looked up by name, valid while the directory watcher runs and
   * reports no change (a send then costs no file read). A stale hit is caught
   * anyway: the socket refuses or the hello fails, and the send re-reads.
   */
  private readonly byName = new Map<string, RegistryEntry>();
  private readonly peerHandlers = new Set<(peers: AgentCard[]) => void>();
  private lastPeers = "";
  private watcher: FSWatcher | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onExit = () => this.exitCleanup();

  /** @internal use startP2P() */
  constructor(registry: Registry, settings: P2PSettings, _env: NodeJS.ProcessEnv) {
    this.registry = registry;
    this.settings = settings;
    this.inbox = new Inbox(
      { count: settings.keepSettled, bytes: settings.keepSettledBytes },
      () => this.entry?.name ?? "the recipient",
    );
    this.outbox = new Outbox({ count: settings.keepOutcomes, bytes: settings.keepOutcomesBytes });
    this.follower = new OutcomeFollower(this.outbox, {
      closed: () => this.closed,
      peerFor: (entry) => this.peerFor(entry),
      currentPeer: (id) => this.peers.get(id),
    });
    this.backend = this.makeBackend();
  }

  /** @internal */
  begin(entry: RegistryEntry, server: PeerServer): void {
    this.entry = entry;
    this.card = cardOf(entry);
    this.server = server;
    process.once("exit", this.onExit);
    try {
      this.watcher = watch(this.registry.dir, { persistent: false }, () => {
        this.byName.clear();
        this.scheduleRefresh();
      });
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined;
        this.byName.clear();
      });
    } catch {
      // No file watching here: the periodic ping still refreshes peers.
    }
    if (this.settings.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.ping().catch(ignore), this.settings.pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  get self(): AgentCard {
    // The owner's own count wins once it reports one; until then, the unsettled inbound messages.
    return this.ownQueueDepth ? this.card : { ...this.card, queue_depth: this.inbox.depth() };
  }

  /** Where this node listens (for scripts and tests). */
  get socketPath(): string {
    return this.entry.socket;
  }

  /** Connections peers currently hold open to this node's socket (diagnostics). */
  inboundConnections(): number {
    return this.server.connections();
  }

  /**
   * What this node keeps of finished work (diagnostics): settled inbound
   * messages and final outcomes of its own sends, each counted and sized.
   */
  retained(): { settled: Retained; outcomes: Retained } {
    return { settled: this.inbox.retained(), outcomes: this.outbox.retained() };
  }

  get project(): string {
    return this.registry.project;
  }

  async list(opts: { include_explicit?: boolean } = {}): Promise<AgentCard[]> {
    // A peer we hold an open connection to needs no probe connection to prove it lives.
    const live = await this.registry.prune(
      (entry) => entry.id === this.entry.id || this.peers.get(entry.id)?.channel.open === true,
    );
    return live
      .filter((entry) => entry.id !== this.entry.id && (opts.include_explicit || !entry.explicit))
      .map((entry) => this.cardFor(entry))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async send(raw: SendInput): Promise<SendAck> {
    this.assertOpen();
    if (typeof raw?.prompt === "string" && raw.prompt.length > MAX_TEXT_LENGTH) {
      throw new ComsError("TOO_LARGE", `prompt is ${raw.prompt.length} characters, over ${MAX_TEXT_LENGTH}`);
    }
    const parsed = SendInput.safeParse(raw);
    if (!parsed.success) {
      throw new ComsError(
        "BAD_INPUT",
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      );
    }
    const input = { ...parsed.data, msg_id: parsed.data.msg_id ?? ulid() };
    if (input.hops + 1 > this.settings.maxHops) throw new ComsError("HOP_LIMIT", "hop limit reached");
    let ack: SendAck | undefined;
    let peer: Peer | undefined;
    // Known before the ack arrives: an outcome on the stream can be read in the same chunk as the ack.
    const resend = this.outbox.has(input.msg_id);
    for (let attempt = 0; !ack; attempt++) {
      const entry = attempt === 0 ? this.lookup(input.to) : this.registry.byName(input.to);
      if (!entry) {
        if (!resend) this.outbox.forget(input.msg_id);
        if (attempt > 0) throw new ComsError("PEER_GONE", `${input.to} is gone`);
        throw new ComsError("UNKNOWN_PEER", `no agent named ${input.to} in project ${this.registry.project}`);
      }
      if (entry.id === this.entry.id) throw new ComsError("BAD_INPUT", SELF_MESSAGE);
      peer = this.peerFor(entry);
      if (!resend) {
        this.outbox.forget(input.msg_id);
        this.outbox.add(input.msg_id, entry.name, entry.id);
      }
      if (!peer.perMessageWatch) this.follower.follow(peer);
      try {
        ack = await peer.client.messages.send.mutate(input);
      } catch (error) {
        const failure = toComsError(error);
        this.byName.delete(input.to);
        if (failure.code !== "PEER_GONE" || attempt > 0) {
          if (!resend) this.outbox.forget(input.msg_id);
          throw failure;
        }
        // A stale connection or a stale entry: once more (same msg_id, so at most once
        // accepted), after dropping what is dead.
        if (!(await entryAlive(entry))) {
          this.dropPeer(entry.id);
          await this.registry.prune();
          this.scheduleRefresh();
        }
      }
    }
    if (!peer) throw new ComsError("PEER_GONE", `${input.to} is gone`);
    if (peer.perMessageWatch) this.follower.watch(peer, ack.msg_id, 0);
    return ack;
  }

  /**
   * A typed tRPC client to one peer, over the same authenticated connection
   * the node uses (for scripts and diagnostics; `send` is what most callers want).
   */
  peerClient(name: string): TRPCClient<ComsRouter> {
    this.assertOpen();
    const entry = this.lookup(name);
    if (!entry)
      throw new ComsError("UNKNOWN_PEER", `no agent named ${name} in project ${this.registry.project}`);
    return this.peerFor(entry).client;
  }

  async get(msgId: string): Promise<Outcome> {
    return this.outbox.get(msgId);
  }

  await(msgId: string, opts: AwaitOptions = {}): Promise<Outcome> {
    return this.outbox.wait(msgId, opts.timeoutMs ?? this.settings.timeoutMs, opts.signal);
  }

  onInbound(handler: (message: Message) => void): () => void {
    return this.inbox.onMessage(handler);
  }

  async settle(msgId: string, result: ReplyResult): Promise<void> {
    const parsed = ReplyResult.safeParse(result);
    if (!parsed.success) {
      throw new ComsError(
        "BAD_INPUT",
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      );
    }
    this.inbox.settle(msgId, parsed.data, this.entry.name);
  }

  updateCard(patch: Parameters<ComsClient["updateCard"]>[0]): void {
    const result = CardPatch.safeParse(patch);
    if (!result.success) {
      throw new ComsError(
        "BAD_INPUT",
        result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      );
    }
    const parsed = result.data;
    this.entry = {
      ...this.entry,
      ...(parsed.model !== undefined && { model: parsed.model }),
      ...(parsed.context_used_pct !== undefined && { context_used_pct: parsed.context_used_pct }),
      ...(parsed.queue_depth !== undefined && { queue_depth: parsed.queue_depth }),
    };
    this.card = cardOf(this.entry);
    if (parsed.queue_depth !== undefined) this.ownQueueDepth = true;
    if (this.closed) return;
    try {
      this.registry.update(this.entry);
    } catch {
      // The ping still carries the new card.
    }
  }

  onPeers(handler: (peers: AgentCard[]) => void): () => void {
    this.peerHandlers.add(handler);
    // A late subscriber gets the current peers too, not only later changes.
    void this.list().then(
      (peers) => {
        if (!this.peerHandlers.has(handler) || this.closed) return;
        try {
          handler(peers);
        } catch {
          // A broken handler must not become an unhandled rejection.
        }
      },
      () => {},
    );
    return () => {
      this.peerHandlers.delete(handler);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.removeListener("exit", this.onExit);
    clearInterval(this.pingTimer);
    clearTimeout(this.refreshTimer);
    this.watcher?.close();
    // Tell every sender still waiting on us, and let those frames leave before the sockets close.
    this.inbox.failAll("PEER_GONE", `${this.entry.name} left before replying`);
    await new Promise((resolve) => setImmediate(resolve));
    await this.server.flush();
    this.outbox.closeAll("coms was closed");
    for (const peer of this.peers.values()) peer.channel.close();
    this.peers.clear();
    await this.server.close();
    await this.registry.remove(this.entry);
  }

  // --- internals -------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new ComsError("PEER_GONE", "coms is closed");
  }

  private lookup(name: string): RegistryEntry | undefined {
    const cached = this.watcher ? this.byName.get(name) : undefined;
    if (cached) return cached;
    const entry = this.registry.byName(name);
    if (entry && this.watcher) this.byName.set(name, entry);
    return entry;
  }

  private cardFor(entry: RegistryEntry): AgentCard {
    const pinged = this.peers.get(entry.id)?.card;
    const card = cardOf(entry);
    return pinged
      ? {
          ...card,
          model: pinged.model,
          context_used_pct: pinged.context_used_pct,
          queue_depth: pinged.queue_depth,
        }
      : card;
  }

  private peerFor(entry: RegistryEntry): Peer {
    const known = this.peers.get(entry.id);
    if (known) {
      known.entry = entry;
      return known;
    }
    const channel = new IpcChannel({
      socketPath: () => (this.peers.get(entry.id)?.entry ?? entry).socket,
      callTimeoutMs: CALL_TIMEOUT_MS,
      handshake: async (call) => {
        await call("agents.hello", { id: this.entry.id, agent_token: this.entry.token });
      },
      onState: (state) => {
        if (state === "closed") this.peerClosed(entry.id).catch(ignore);
      },
    });
    const peer: Peer = {
      entry,
      channel,
      client: createTRPCClient<ComsRouter>({ links: [ipcLink(channel)] }),
      outcomeSeq: 0,
      outcomeRetries: 0,
      perMessageWatch: false,
    };
    this.peers.set(entry.id, peer);
    return peer;
  }

  private dropPeer(id: string): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.channel.close();
  }

  /** A connection to a peer closed: if the peer is dead, everything pending on it ends now. */
  private async peerClosed(id: string): Promise<void> {
    const peer = this.peers.get(id);
    if (!peer || this.closed) return;
    if (await entryAlive(peer.entry)) return;
    for (const msgId of this.outbox.pendingTo(id)) {
      this.outbox.fail(msgId, "PEER_GONE", `${peer.entry.name} exited before replying`);
    }
    this.dropPeer(id);
    await this.registry.prune();
    this.scheduleRefresh();
  }

  private scheduleRefresh(): void {
    if (this.closed || this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.refresh().catch(ignore);
    }, 30);
  }

  /** Recompute the visible peers and tell the handlers if anything changed. */
  private async refresh(): Promise<void> {
    if (this.closed || this.peerHandlers.size === 0) return;
    let peers: AgentCard[];
    try {
      peers = await this.list();
    } catch {
      return;
    }
    const key = JSON.stringify(peers);
    if (key === this.lastPeers || this.closed) return;
    this.lastPeers = key;
    for (const handler of this.peerHandlers) {
      try {
        handler(peers);
      } catch {
        // One broken handler must not starve the others.
      }
    }
  }

  /** The health check: ask every peer for its card; the dead are pruned. */
  private async ping(): Promise<void> {
    if (this.closed) return;
    const entries = this.registry.read().filter((entry) => entry.id !== this.entry.id);
    await Promise.all(
      entries.map(async (entry) => {
        const peer = this.peerFor(entry);
        try {
          peer.card = (await peer.client.agents.card.query()) as AgentCard;
        } catch {
          if (!(await entryAlive(entry))) this.dropPeer(entry.id);
        }
      }),
    );
    for (const id of this.peers.keys()) {
      if (!entries.some((entry) => entry.id === id)) this.dropPeer(id);
    }
    this.scheduleRefresh();
  }

  private exitCleanup(): void {
    // Last resort when the process exits without close(): leave no entry behind.
    try {
      rmSync(this.entry.socket, { force: true });
      this.registry.removeSync(this.entry);
    } catch {
      // Others prune it when they notice the pid is gone.
    }
  }

  private makeBackend(): ComsBackend {
    const notServed = (what: string) => async () => {
      throw comsError("BAD_INPUT", `${what} is not served over a peer socket`);
    };
    return {
      register: notServed("agents.register"),
      heartbeat: notServed("agents.heartbeat"),
      leave: notServed("agents.leave"),
      ack: notServed("messages.ack"),
      settle: notServed("messages.settle"),
      // biome-ignore lint/correctness/useYield: an inbox stream is not offered here
      inbox: async function* () {
        throw comsError("BAD_INPUT", "messages.inbox is not served over a peer socket");
      },
      hello: async (input) => {
        const caller = this.registry.byId(input.id);
        if (!caller || !tokensEqual(caller.token, input.agent_token)) {
          throw comsError("UNAUTHORIZED", "unknown agent or wrong token");
        }
        return cardOf(caller);
      },
      list: async (_caller, input) => this.list(input),
      card: async () => {
        if (!this.card) throw comsError("PEER_GONE", "still starting");
        return this.self;
      },
      send: async (caller: Caller, input) => {
        // The socket listens a moment before the entry is final; nobody should find it then.
        if (!this.card) throw comsError("PEER_GONE", "still starting");
        if (this.closed) throw comsError("PEER_GONE", `${this.entry.name} is leaving`);
        return this.inbox.accept(caller, input, this.self, this.settings.maxHops);
      },
      get: async (caller, msgId) => this.inbox.outcome(caller, msgId),
      watch: (caller, msgId, signal) => this.inbox.watch(caller, msgId, signal),
      outcomes: (caller, after, signal) => this.inbox.outcomes(caller, after, signal),
    };
  }
}

/** Background work (pings, refreshes, re-watches) must never become an unhandled rejection. */
function ignore(): void {}

const ADJECTIVES = ["amber", "brisk", "calm", "deft", "eager", "keen", "lucid", "nimble", "quiet", "swift"];
const NOUNS = ["otter", "heron", "lynx", "finch", "badger", "falcon", "marten", "wren", "ibex", "koi"];

function generatedName(): string {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)] ?? list[0];
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}`;
}

/**
 * A P2P coms node: this session's entry in the project registry, its socket
 * server, and typed tRPC clients to the peers it talks to. It implements the
 * transport-neutral ComsClient the plugin and scripts use.
 *
 *   const node = await startP2P({ name: "coder", purpose: "implements features" });
 *   const ack = await node.send({ to: "reviewer", prompt: "please review" });
 *   const outcome = await node.await(ack.msg_id, { timeoutMs: 60_000 });
 */
import { rmSync } from "node:fs";
import type { TRPCClient } from "@trpc/client";
import type { AwaitOptions, ComsClient } from "../contract/client.ts";
import { ComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { ComsBackend, ComsRouter } from "../contract/router.ts";
import {
  type AgentCard,
  AgentName,
  Color,
  type Message,
  type Outcome,
  ReplyResult,
  type SendAck,
  type SendInput,
} from "../contract/schemas.ts";
import { generatedName } from "../lib/agent-name.ts";
import { type P2PSettings, p2pSettings } from "../lib/env.ts";
import { checkedProject, projectFromCwd } from "../lib/project.ts";
import { newToken } from "../lib/secrets.ts";
import { ignore } from "./ignore.ts";
import { Inbox } from "./inbox.ts";
import { Liveness } from "./liveness.ts";
import { Outbox } from "./outbox.ts";
import { OutcomeFollower } from "./outcome-follower.ts";
import { OwnCard } from "./own-card.ts";
import { parseInput } from "./parse-input.ts";
import { socketPathFor } from "./paths.ts";
import { peerBackend } from "./peer-backend.ts";
import { PeerLinks } from "./peer-links.ts";
import { PeerUpdates } from "./peer-updates.ts";
import { Registry, type RegistryEntry } from "./registry.ts";
import type { Retained } from "./retention.ts";
import { type SenderParts, sendMessage } from "./sender.ts";
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

export async function startP2P(opts: P2PStartOptions = {}): Promise<P2PNode> {
  const env = opts.env ?? process.env;
  const settings = p2pSettings(env);
  const project = checkedProject(opts.project ?? projectFromCwd(opts.cwd));
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

/** The work lives in the parts; the node keeps the start-up and shutdown order, which spans them all. */
export class P2PNode implements ComsClient {
  readonly transport = "p2p" as const;
  readonly backend: ComsBackend;
  private readonly registry: Registry;
  private readonly settings: P2PSettings;
  private readonly own: OwnCard;
  private server!: PeerServer;
  private readonly inbox: Inbox;
  private readonly outbox: Outbox;
  private readonly follower: OutcomeFollower;
  private readonly links: PeerLinks;
  private readonly updates: PeerUpdates;
  private readonly liveness: Liveness;
  private readonly sending: SenderParts;
  private closed = false;
  private readonly onExit = () => this.exitCleanup();

  /** @internal use startP2P() */
  constructor(registry: Registry, settings: P2PSettings, _env: NodeJS.ProcessEnv) {
    this.registry = registry;
    this.settings = settings;
    const closed = () => this.closed;
    this.inbox = new Inbox({ count: settings.keepSettled, bytes: settings.keepSettledBytes }, () =>
      this.own.started ? this.own.entry.name : "the recipient",
    );
    this.own = new OwnCard(registry, () => this.inbox.depth());
    this.outbox = new Outbox({ count: settings.keepOutcomes, bytes: settings.keepOutcomesBytes });
    this.links = new PeerLinks(registry, {
      self: () => this.own.entry,
      closed: (id) => this.liveness.connectionClosed(id).catch(ignore),
      changed: () => this.updates.schedule(),
    });
    this.follower = new OutcomeFollower(this.outbox, {
      closed,
      peerFor: (entry) => this.links.peerFor(entry),
      currentPeer: (id) => this.links.get(id),
    });
    this.updates = new PeerUpdates(() => this.list(), closed);
    this.liveness = new Liveness({
      registry,
      links: this.links,
      outbox: this.outbox,
      selfId: () => this.own.entry.id,
      closed,
      changed: () => this.updates.schedule(),
    });
    this.sending = {
      registry,
      links: this.links,
      outbox: this.outbox,
      follower: this.follower,
      liveness: this.liveness,
      maxHops: settings.maxHops,
      selfId: () => this.own.entry.id,
    };
    this.backend = peerBackend({
      registry,
      inbox: this.inbox,
      own: this.own,
      maxHops: settings.maxHops,
      closed,
      list: (input) => this.list(input),
    });
  }

  /** @internal */
  begin(entry: RegistryEntry, server: PeerServer): void {
    this.own.begin(entry);
    this.server = server;
    process.once("exit", this.onExit);
    this.links.watchDirectory();
    this.liveness.start(this.settings.pingIntervalMs);
  }

  get self(): AgentCard {
    return this.own.self;
  }

  /** Where this node listens (for scripts and tests). */
  get socketPath(): string {
    return this.own.entry.socket;
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
      (entry) => entry.id === this.own.entry.id || this.links.isOpen(entry.id),
    );
    return live
      .filter((entry) => entry.id !== this.own.entry.id && (opts.include_explicit || !entry.explicit))
      .map((entry) => this.links.cardFor(entry))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async send(raw: SendInput): Promise<SendAck> {
    this.assertOpen();
    return sendMessage(this.sending, raw);
  }

  /**
   * A typed tRPC client to one peer, over the same authenticated connection
   * the node uses (for scripts and diagnostics; `send` is what most callers want).
   */
  peerClient(name: string): TRPCClient<ComsRouter> {
    this.assertOpen();
    const entry = this.links.lookup(name);
    if (!entry)
      throw new ComsError("UNKNOWN_PEER", `no agent named ${name} in project ${this.registry.project}`);
    return this.links.peerFor(entry).client;
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
    this.inbox.settle(msgId, parseInput(ReplyResult, result), this.own.entry.name);
  }

  updateCard(patch: Parameters<ComsClient["updateCard"]>[0]): void {
    this.own.update(patch, !this.closed);
  }

  onPeers(handler: (peers: AgentCard[]) => void): () => void {
    return this.updates.subscribe(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.removeListener("exit", this.onExit);
    this.liveness.stop();
    this.updates.stop();
    this.links.stopWatching();
    // Tell every sender still waiting on us, and let those frames leave before the sockets close.
    this.inbox.failAll("PEER_GONE", `${this.own.entry.name} left before replying`);
    await new Promise((resolve) => setImmediate(resolve));
    await this.server.flush();
    this.outbox.closeAll("coms was closed");
    this.links.closeAll();
    await this.server.close();
    await this.registry.remove(this.own.entry);
  }

  /** Tests reach in here to drop a node's connections while its peers stay up. */
  private get peers() {
    return this.links.peers;
  }

  private assertOpen(): void {
    if (this.closed) throw new ComsError("PEER_GONE", "coms is closed");
  }

  private exitCleanup(): void {
    // Last resort when the process exits without close(): leave no entry behind.
    try {
      rmSync(this.own.entry.socket, { force: true });
      this.registry.removeSync(this.own.entry);
    } catch {
      // Others prune it when they notice the pid is gone.
    }
  }
}

/**
 * Noticing peers that died: a periodic ping asks every registered peer for
 * its card (which also keeps listings current), and a dropped connection or a
 * failed send checks the peer's pid and socket before anything is given up.
 */
import type { AgentCard } from "../contract/schemas.ts";
import { ignore } from "./ignore.ts";
import type { Outbox } from "./outbox.ts";
import type { PeerLinks } from "./peer-links.ts";
import { entryAlive, type Registry, type RegistryEntry } from "./registry.ts";

export interface LivenessHost {
  registry: Registry;
  links: PeerLinks;
  outbox: Outbox;
  selfId(): string;
  closed(): boolean;
  /** The set of peers may have changed. */
  changed(): void;
}

export class Liveness {
  private readonly host: LivenessHost;
  private timer: NodeJS.Timeout | undefined;

  constructor(host: LivenessHost) {
    this.host = host;
  }

  /** Ping every `intervalMs`; 0 turns pinging off. */
  start(intervalMs: number): void {
    if (!(intervalMs > 0)) return;
    this.timer = setInterval(() => this.ping().catch(ignore), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The health check: ask every peer for its card; the dead are pruned. */
  async ping(): Promise<void> {
    const { registry, links } = this.host;
    if (this.host.closed()) return;
    const self = this.host.selfId();
    const entries = registry.read().filter((entry) => entry.id !== self);
    await Promise.all(
      entries.map(async (entry) => {
        const peer = links.peerFor(entry);
        try {
          peer.card = (await peer.client.agents.card.query()) as AgentCard;
        } catch {
          if (!(await entryAlive(entry))) links.drop(entry.id);
        }
      }),
    );
    for (const id of links.peers.keys()) {
      if (!entries.some((entry) => entry.id === id)) links.drop(id);
    }
    this.host.changed();
  }

  /** A connection to a peer closed: if the peer is dead, everything pending on it ends now. */
  async connectionClosed(id: string): Promise<void> {
    const peer = this.host.links.get(id);
    if (!peer || this.host.closed()) return;
    if (await entryAlive(peer.entry)) return;
    for (const msgId of this.host.outbox.pendingTo(id)) {
      this.host.outbox.fail(msgId, "PEER_GONE", `${peer.entry.name} exited before replying`);
    }
    await this.forget(id);
  }

  /** A send to this entry failed as if it were gone: forget it if it really is. */
  async checkGone(entry: RegistryEntry): Promise<void> {
    if (!(await entryAlive(entry))) await this.forget(entry.id);
  }

  private async forget(id: string): Promise<void> {
    this.host.links.drop(id);
    await this.host.registry.prune();
    this.host.changed();
  }
}

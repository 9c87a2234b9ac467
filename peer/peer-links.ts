/**
 * The node's connections to its peers, one authenticated socket each, and a
 * by-name cache of registry entries that the directory watcher keeps honest.
 */
import { type FSWatcher, watch } from "node:fs";
import type { AgentCard } from "../contract/schemas.ts";
import { ipcClient } from "./ipc-client.ts";
import { IpcChannel } from "./link.ts";
import type { Peer } from "./outcome-follower.ts";
import { cardOf, type Registry, type RegistryEntry } from "./registry.ts";

/** How long one socket call (send, hello, ping) may take before it fails with TIMEOUT. */
const CALL_TIMEOUT_MS = 10_000;

export interface PeerLinksHost {
  /** This node's entry: its id and token open every connection. */
  self(): RegistryEntry;
  /** A connection closed; the peer may or may not be dead. */
  closed(id: string): void;
  /** Something in the registry directory changed. */
  changed(): void;
}

export class PeerLinks {
  readonly peers = new Map<string, Peer>();
  private readonly registry: Registry;
  private readonly host: PeerLinksHost;
  /**
   * Entries looked up by name, valid while the directory watcher runs and
   * reports no change (a send then costs no file read). A stale hit is caught
   * anyway: the socket refuses or the hello fails, and the send re-reads.
   */
  private readonly byName = new Map<string, RegistryEntry>();
  private watcher: FSWatcher | undefined;

  constructor(registry: Registry, host: PeerLinksHost) {
    this.registry = registry;
    this.host = host;
  }

  watchDirectory(): void {
    try {
      this.watcher = watch(this.registry.dir, { persistent: false }, () => {
        this.byName.clear();
        this.host.changed();
      });
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined;
        this.byName.clear();
      });
    } catch {
      // No file watching here: the periodic ping still refreshes peers.
    }
  }

  stopWatching(): void {
    this.watcher?.close();
  }

  lookup(name: string): RegistryEntry | undefined {
    const cached = this.watcher ? this.byName.get(name) : undefined;
    if (cached) return cached;
    const entry = this.registry.byName(name);
    if (entry && this.watcher) this.byName.set(name, entry);
    return entry;
  }

  /** A send to this name failed: the next lookup reads the registry again. */
  forget(name: string): void {
    this.byName.delete(name);
  }

  get(id: string): Peer | undefined {
    return this.peers.get(id);
  }

  isOpen(id: string): boolean {
    return this.peers.get(id)?.channel.open === true;
  }

  /** The entry's card, with the live fields from the peer's last ping when there was one. */
  cardFor(entry: RegistryEntry): AgentCard {
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

  /** The connection to this peer, made if there is none. */
  peerFor(entry: RegistryEntry): Peer {
    const known = this.peers.get(entry.id);
    if (known) {
      known.entry = entry;
      return known;
    }
    const channel = new IpcChannel({
      socketPath: () => (this.peers.get(entry.id)?.entry ?? entry).socket,
      callTimeoutMs: CALL_TIMEOUT_MS,
      handshake: async (call) => {
        const self = this.host.self();
        await call("agents.hello", { id: self.id, agent_token: self.token });
      },
      onState: (state) => {
        if (state === "closed") this.host.closed(entry.id);
      },
    });
    const peer: Peer = {
      entry,
      channel,
      client: ipcClient(channel),
      outcomeSeq: 0,
      outcomeRetries: 0,
      perMessageWatch: false,
    };
    this.peers.set(entry.id, peer);
    return peer;
  }

  drop(id: string): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.channel.close();
  }

  closeAll(): void {
    for (const peer of this.peers.values()) peer.channel.close();
    this.peers.clear();
  }
}

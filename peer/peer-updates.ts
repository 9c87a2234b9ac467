/**
 * Telling onPeers subscribers about the visible peers: changes arrive in
 * bursts (a directory event per file write, a ping round), so refreshes are
 * coalesced and a subscriber hears only when the list actually changed.
 */
import type { AgentCard } from "../contract/schemas.ts";
import { ignore } from "./ignore.ts";

type PeersHandler = (peers: AgentCard[]) => void;

export class PeerUpdates {
  private readonly list: () => Promise<AgentCard[]>;
  private readonly closed: () => boolean;
  private readonly handlers = new Set<PeersHandler>();
  private last = "";
  private timer: NodeJS.Timeout | undefined;

  constructor(list: () => Promise<AgentCard[]>, closed: () => boolean) {
    this.list = list;
    this.closed = closed;
  }

  subscribe(handler: PeersHandler): () => void {
    this.handlers.add(handler);
    // A late subscriber gets the current peers too, not only later changes.
    void this.list().then(
      (peers) => {
        if (!this.handlers.has(handler) || this.closed()) return;
        try {
          handler(peers);
        } catch {
          // A broken handler must not become an unhandled rejection.
        }
      },
      () => {},
    );
    return () => {
      this.handlers.delete(handler);
    };
  }

  schedule(): void {
    if (this.closed() || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch(ignore);
    }, 30);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async refresh(): Promise<void> {
    if (this.closed() || this.handlers.size === 0) return;
    let peers: AgentCard[];
    try {
      peers = await this.list();
    } catch {
      return;
    }
    const key = JSON.stringify(peers);
    if (key === this.last || this.closed()) return;
    this.last = key;
    for (const handler of this.handlers) {
      try {
        handler(peers);
      } catch {
        // One broken handler must not starve the others.
      }
    }
  }
}

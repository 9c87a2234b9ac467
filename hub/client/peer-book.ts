/**
 * The peers a hub client knows: a full list (agents.list) replaced by
 * `peers` events from the stream, full or delta, with the handlers that hear
 * each change. Events that arrive while a list call is in flight are applied
 * again on top of its (older) answer.
 */
import type { AgentCard, InboxEvent } from "../../contract/schemas.ts";

export type PeersEvent = Extract<InboxEvent, { kind: "peers" }>;

export class PeerBook {
  private readonly handlers = new Set<(peers: AgentCard[]) => void>();
  private peers: AgentCard[] | undefined;
  private readonly byId = new Map<string, AgentCard>();
  private duringList: PeersEvent[] | undefined;
  private readonly selfId: () => string | undefined;

  /** `selfId` is left out of the list (the agent itself is no peer). */
  constructor(selfId: () => string | undefined) {
    this.selfId = selfId;
  }

  /** A peers event off the stream. */
  event(event: PeersEvent): void {
    this.duringList?.push(event);
    this.apply(event);
  }

  /** Replace the list with a fresh agents.list answer; a failure is left to the next event or reconnect. */
  async refresh(list: () => Promise<AgentCard[]>): Promise<void> {
    this.duringList = [];
    try {
      const agents = await list();
      const later = this.duringList;
      this.duringList = undefined;
      this.apply({ kind: "peers", agents });
      for (const event of later) if (event.delta) this.apply(event);
    } catch {
      this.duringList = undefined;
    }
  }

  onPeers(handler: (peers: AgentCard[]) => void): () => void {
    this.handlers.add(handler);
    const current = this.peers;
    if (current) queueMicrotask(() => this.handlers.has(handler) && handler(current));
    return () => {
      this.handlers.delete(handler);
    };
  }

  private apply(event: PeersEvent): void {
    if (!event.delta) this.byId.clear();
    for (const id of event.removed ?? []) this.byId.delete(id);
    const self = this.selfId();
    for (const card of event.agents) if (card.id !== self) this.byId.set(card.id, card);
    this.peers = [...this.byId.values()];
    for (const handler of this.handlers) handler(this.peers);
  }
}

/**
 * This node's own registry entry and the card derived from it. The card is
 * rebuilt only when the entry changes, since peers ask for it on every ping.
 */
import { type AgentCard, CardPatch } from "../contract/schemas.ts";
import { parseInput } from "./parse-input.ts";
import { cardOf, type Registry, type RegistryEntry } from "./registry.ts";

export class OwnCard {
  private readonly registry: Registry;
  /** Unsettled inbound messages: the queue depth shown until the owner reports its own. */
  private readonly pending: () => number;
  // Assigned once the name is claimed; the socket already listens before that.
  private current!: RegistryEntry;
  private card: AgentCard | undefined;
  private ownQueueDepth = false;

  constructor(registry: Registry, pending: () => number) {
    this.registry = registry;
    this.pending = pending;
  }

  begin(entry: RegistryEntry): void {
    this.current = entry;
    this.card = cardOf(entry);
  }

  /** False until begin(): nobody should find or message the node before its entry is final. */
  get started(): boolean {
    return this.card !== undefined;
  }

  get entry(): RegistryEntry {
    return this.current;
  }

  get self(): AgentCard {
    const card = this.card as AgentCard;
    // The owner's own count wins once it reports one; until then, the unsettled inbound messages.
    return this.ownQueueDepth ? card : { ...card, queue_depth: this.pending() };
  }

  /** Apply the owner's patch; `publish` is false once the node is closed and its entry gone. */
  update(patch: unknown, publish: boolean): void {
    const parsed = parseInput(CardPatch, patch);
    this.current = {
      ...this.current,
      ...(parsed.model !== undefined && { model: parsed.model }),
      ...(parsed.context_used_pct !== undefined && { context_used_pct: parsed.context_used_pct }),
      ...(parsed.queue_depth !== undefined && { queue_depth: parsed.queue_depth }),
    };
    this.card = cardOf(this.current);
    if (parsed.queue_depth !== undefined) this.ownQueueDepth = true;
    if (!publish) return;
    try {
      this.registry.update(this.current);
    } catch {
      // The ping still carries the new card.
    }
  }
}

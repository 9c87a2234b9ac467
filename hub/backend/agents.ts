/**
 * Agents on the hub: registration and resume with a credential, names
 * (handed on from a crashed holder, else suffixed), presence from open inbox
 * streams and heartbeats (online → stale → offline), removal with a
 * definite outcome for what was queued to them, and the coalesced peers
 * broadcast to every stream.
 */
import type { z } from "zod";
import { comsError } from "../../contract/errors.ts";
import type { RegisterRequest } from "../../contract/features.ts";
import { ulid } from "../../contract/ids.ts";
import type { Caller } from "../../contract/router.ts";
import type {
  AgentCard,
  AgentStatus,
  CardPatch,
  HelloInput,
  ListInput,
  RegisterResult,
} from "../../contract/schemas.ts";
import { hashToken, matchesSecret, newToken, sameDigest } from "../../lib/secrets.ts";
import type { AgentRecord } from "../store/store.ts";
import type { QueueItem } from "./inbox-feed.ts";
import type { InboxStreams } from "./inbox-streams.ts";
import { errorOutcome, type Messages } from "./messages.ts";
import type { HubState } from "./state.ts";

export class Agents {
  private readonly state: HubState;
  private readonly streams: InboxStreams;
  private readonly messages: Messages;
  private peersTimer: NodeJS.Timeout | undefined;
  /** Agents whose card or presence changed, and agents that left, since the last peers event. */
  private readonly dirtyPeers = new Set<string>();
  private readonly removedPeers = new Set<string>();
  /** Credentials that matched their record's hash (see authenticate). */
  private readonly verified = new WeakMap<AgentRecord, Buffer>();

  constructor(state: HubState, streams: InboxStreams, messages: Messages) {
    this.state = state;
    this.streams = streams;
    this.messages = messages;
  }

  /**
   * The verified caller for an agent credential, or null. The store keeps
   * only a hash; once a credential has matched it, the credential is kept in
   * memory (never written) and later calls compare against it directly,
   * in constant time, instead of hashing on every request.
   */
  authenticate(id: string, token: string): Caller | null {
    const record = this.state.agents.get(id);
    if (!record) return null;
    const known = this.verified.get(record);
    if (known) {
      if (!matchesSecret(token, known)) return null;
    } else {
      if (!sameDigest(hashToken(token), Buffer.from(record.token_hash, "hex"))) return null;
      this.verified.set(record, Buffer.from(token));
    }
    return { id, name: record.card.name };
  }

  async register(input: z.output<typeof RegisterRequest>): Promise<z.output<typeof RegisterResult>> {
    const { state } = this;
    state.assertOpen();
    const now = Date.now();
    if (input.resume) {
      const existing = state.agents.get(input.resume.id);
      if (existing) {
        if (!this.authenticate(input.resume.id, input.resume.agent_token)) {
          throw comsError("UNAUTHORIZED", "resume refused: the agent credential does not match");
        }
        existing.card = {
          ...existing.card,
          purpose: input.purpose ?? existing.card.purpose,
          model: input.model ?? existing.card.model,
          color: input.color ?? existing.card.color,
          explicit: input.explicit ?? existing.card.explicit,
        };
        existing.last_seen = now;
        setStreamPresence(existing, input.presence);
        state.store.putAgent(existing);
        this.peersChanged(existing.card.id);
        await state.store.flush();
        return { card: this.cardOf(existing), agent_token: input.resume.agent_token };
      }
    }
    if (state.agents.size >= state.limits.maxAgents) {
      throw comsError("BAD_INPUT", `the hub is full: it allows ${state.limits.maxAgents} agents`);
    }
    const maxPending = state.limits.maxPendingRegistrations;
    if (maxPending > 0 && state.pending.size >= maxPending) {
      throw comsError(
        "RATE_LIMITED",
        `too many registrations waiting to connect: ${state.pending.size} agents have registered and not yet opened their inbox (--max-pending-registrations ${maxPending}); retry once they connect or are reaped`,
      );
    }
    const agentToken = input.resume?.agent_token ?? newToken();
    const card: AgentCard = {
      id: input.resume?.id ?? ulid(now),
      name: this.claimName(input.name),
      purpose: input.purpose ?? "",
      model: input.model ?? "",
      ...(input.color ? { color: input.color } : {}),
      explicit: input.explicit ?? false,
      project: state.project,
      context_used_pct: null,
      queue_depth: 0,
      status: "online",
      started_at: now,
    };
    const record: AgentRecord = { card, token_hash: hashToken(agentToken).toString("hex"), last_seen: now };
    setStreamPresence(record, input.presence);
    state.agents.set(card.id, record);
    state.byName.set(card.name, card.id);
    state.lastStatus.set(card.id, "online");
    state.pending.add(card.id);
    state.store.putAgent(record);
    this.peersChanged(card.id);
    await state.store.flush();
    return { card: this.cardOf(record), agent_token: agentToken };
  }

  /** A free name: the requested one, else with the lowest free numeric suffix (coder → coder2). */
  private claimName(requested: string): string {
    const holder = this.state.byName.get(requested);
    if (holder === undefined) return requested;
    const record = this.state.agents.get(holder);
    // A crashed session's name is handed to whoever asks for it next.
    if (record && this.statusOf(record) === "offline") {
      this.remove(holder, "was replaced by a new agent with the same name");
      return requested;
    }
    for (let n = 2; ; n++) {
      const suffix = String(n);
      const name = requested.slice(0, 64 - suffix.length) + suffix;
      if (!this.state.byName.has(name)) return name;
    }
  }

  async hello(input: z.output<typeof HelloInput>): Promise<AgentCard> {
    const caller = this.authenticate(input.id, input.agent_token);
    if (!caller) throw comsError("UNAUTHORIZED", "unknown agent or wrong agent credential");
    return this.cardOf(this.state.agentOf(caller));
  }

  async heartbeat(caller: Caller, patch: CardPatch): Promise<AgentCard> {
    const record = this.state.agentOf(caller);
    const before = this.statusOf(record);
    const card = record.card;
    const modelChanged = patch.model !== undefined && patch.model !== card.model;
    const changed =
      modelChanged ||
      (patch.context_used_pct !== undefined && patch.context_used_pct !== card.context_used_pct);
    if (patch.model !== undefined) card.model = patch.model;
    if (patch.context_used_pct !== undefined) card.context_used_pct = patch.context_used_pct;
    if (patch.queue_depth !== undefined) card.queue_depth = patch.queue_depth;
    record.last_seen = Date.now();
    const wasOffline = this.state.lastStatus.get(card.id) === "offline";
    this.state.lastStatus.set(card.id, "online");
    if (wasOffline) this.messages.recipientBack(card.id);
    if (changed || before !== "online") this.peersChanged(card.id);
    // Only the model is worth a write: a restarted hub starts every agent's presence from now, and
    // context use and queue depth are sent again with the client's next change.
    if (modelChanged) this.state.store.putAgent(record);
    return this.cardOf(record);
  }

  /** Forget an agent: what was queued to it ends PEER_GONE (`why` says how it went), its streams end. */
  remove(id: string, why: string): void {
    const { state } = this;
    const record = state.agents.get(id);
    if (!record) return;
    state.agents.delete(id);
    state.sendRate.forget(id);
    if (state.byName.get(record.card.name) === id) state.byName.delete(record.card.name);
    state.lastStatus.delete(id);
    state.pending.delete(id);
    state.store.deleteAgent(id);
    for (const msgId of [...(state.queues.get(id) ?? [])]) {
      const message = state.messages.get(msgId);
      if (message)
        this.messages.finish(message, errorOutcome(msgId, "PEER_GONE", `${record.card.name} ${why}`));
    }
    state.dropQueue(id);
    // Nobody is left to read the outcomes of what it sent.
    for (const msgId of [...(state.untaken.get(id) ?? [])]) this.messages.dropMessage(msgId);
    this.streams.endAgent(id);
    this.peersChanged(id, true);
  }

  async list(caller: Caller | null, input: z.output<typeof ListInput>): Promise<AgentCard[]> {
    if (!caller) throw comsError("UNAUTHORIZED", "identify first: listing needs a registered agent");
    const cards: AgentCard[] = [];
    for (const record of this.state.agents.values()) {
      if (record.card.id === caller.id) continue;
      if (record.card.explicit && !input.include_explicit) continue;
      cards.push(this.cardOf(record));
    }
    return cards;
  }

  async card(caller: Caller | null): Promise<AgentCard> {
    if (!caller) throw comsError("UNAUTHORIZED", "identify first: the hub has no card of its own");
    return this.cardOf(this.state.agentOf(caller));
  }

  /**
   * Move presence along; an agent that just went offline ends what it held
   * unanswered (PEER_GONE). Reap agents offline for `reapAfterMs`, and those
   * registered that long ago that never opened their inbox.
   */
  sweep(now: number): void {
    const { state } = this;
    const { offlineAfterMs, reapAfterMs } = state.limits;
    for (const record of [...state.agents.values()]) {
      const id = record.card.id;
      // An open inbox stream is proof of life for a client that counts on it (it sends no heartbeats then).
      if (record.stream_presence && this.streams.has(id)) record.last_seen = now;
      const status = this.statusOf(record, now);
      const was = state.lastStatus.get(id) ?? "online";
      if (status !== was) {
        state.lastStatus.set(id, status);
        const silent = now - record.last_seen;
        if (status === "offline") {
          this.messages.recipientGone(
            id,
            `${record.card.name} went offline (nothing heard from it for ${silent} ms)`,
          );
        } else if (status === "stale" && !this.streams.has(id)) {
          // Silent and no stream: a live client keeps its stream open through a missed heartbeat or two.
          this.messages.recipientGone(
            id,
            `${record.card.name} is gone (its inbox stream closed and nothing heard from it for ${silent} ms)`,
          );
        }
        if (was === "offline") this.messages.recipientBack(id);
        this.peersChanged(id);
      }
      if (reapAfterMs <= 0) continue;
      if (status === "offline" && now - record.last_seen - offlineAfterMs >= reapAfterMs) {
        this.remove(id, `was reaped: offline for more than ${reapAfterMs} ms`);
      } else if (state.pending.has(id) && now - record.card.started_at >= reapAfterMs) {
        this.remove(id, `was reaped: it registered and never opened its inbox within ${reapAfterMs} ms`);
      }
    }
  }

  statusOf(record: AgentRecord, now = Date.now()): AgentStatus {
    return this.state.statusOf(record, now);
  }

  cardOf(record: AgentRecord): AgentCard {
    return {
      ...record.card,
      status: this.statusOf(record),
      queue_depth: this.state.queues.get(record.card.id)?.size ?? 0,
    };
  }

  /**
   * Tell every connected agent which cards changed and who left. Coalesced
   * over a short window, and sent as a delta, so a crowd registering at once
   * costs a few small broadcasts instead of one full list per agent per agent.
   */
  peersChanged(id: string, removed = false): void {
    const { state } = this;
    if (state.events.active) {
      const record = state.agents.get(id);
      state.events.emit(
        removed || !record ? { type: "agent_left", id } : { type: "agent", card: this.cardOf(record) },
      );
    }
    if (removed) {
      this.removedPeers.add(id);
      this.dirtyPeers.delete(id);
    } else {
      this.dirtyPeers.add(id);
    }
    if (this.peersTimer || state.closed) return;
    this.peersTimer = setTimeout(
      () => this.broadcastPeers(),
      Math.min(500, 20 + Math.floor(state.agents.size / 4)),
    );
    this.peersTimer.unref();
  }

  private broadcastPeers(): void {
    this.peersTimer = undefined;
    const cards: AgentCard[] = [];
    const removed = [...this.removedPeers];
    for (const id of this.dirtyPeers) {
      const record = this.state.agents.get(id);
      // Explicit agents stay out of everyone's pool.
      if (record && !record.card.explicit) cards.push(this.cardOf(record));
      else if (record) removed.push(id);
    }
    this.dirtyPeers.clear();
    this.removedPeers.clear();
    if (cards.length === 0 && removed.length === 0) return;
    const item: QueueItem = {
      id: this.streams.eventId(this.state.seq),
      seq: this.state.seq,
      event: { kind: "peers", agents: cards, delta: true, removed },
    };
    this.streams.broadcast(item);
  }

  /** Closing: send what is pending now, so an agent that just left is not left listed with those still connected. */
  close(): void {
    clearTimeout(this.peersTimer);
    this.broadcastPeers();
  }
}

function setStreamPresence(record: AgentRecord, presence: "heartbeat" | "stream" | undefined): void {
  if (presence === "stream") record.stream_presence = true;
  else delete record.stream_presence;
}

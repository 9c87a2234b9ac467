/**
 * Every agent's open inbox streams: opening one (the replay after a
 * Last-Event-ID, computed in the same synchronous step as the subscription),
 * publishing live events to an agent's streams or to all of them, and the
 * durability gate each feed waits on before it hands an event out.
 */
import type { InboxEvent } from "../../contract/schemas.ts";
import { InboxFeed, type InboxFeedDeps, type QueueItem } from "./inbox-feed.ts";
import { type HubState, setOf } from "./state.ts";
import { StreamGrace } from "./stream-grace.ts";

export class InboxStreams {
  private readonly state: HubState;
  private readonly streams = new Map<string, Set<InboxFeed>>();
  private durableSeq: number;
  /** Feeds holding an event that is not on disk yet, and whether a flush is being waited for them. */
  private waiting = new Set<InboxFeed>();
  /** The other set of the pair: the feeds being woken while new ones gather in `waiting`. */
  private waking = new Set<InboxFeed>();
  private watchingFlush = false;
  /** Everything numbered up to here is in the flush being waited for. */
  private flushTarget = 0;
  private readonly undeliverable: (item: QueueItem, error: unknown) => void;
  private readonly grace: StreamGrace;

  /**
   * `undeliverable` hears of an event a stream could not take (the feed has
   * skipped it); `gone` of an agent whose last stream closed and that did not
   * open another within the limits' streamGraceMs.
   */
  constructor(
    state: HubState,
    undeliverable: (item: QueueItem, error: unknown) => void,
    gone: (agentId: string) => void,
  ) {
    this.state = state;
    this.undeliverable = undeliverable;
    this.durableSeq = state.seq;
    this.grace = new StreamGrace(state.limits.streamGraceMs, gone);
  }

  /** Open inbox streams (connected agents' SSE subscriptions). */
  get count(): number {
    let n = 0;
    for (const set of this.streams.values()) n += set.size;
    return n;
  }

  /** Whether the agent has an inbox stream open. */
  has(agentId: string): boolean {
    return (this.streams.get(agentId)?.size ?? 0) > 0;
  }

  /** `peers`: this stream also takes the peers changes (presence); a client that does not watch them says no. */
  open(
    agentId: string,
    lastEventId: string | null,
    signal: AbortSignal | undefined,
    peers = true,
  ): InboxFeed {
    const { messages, queues, untaken } = this.state;
    // Subscribe and compute the replay in one synchronous step: nothing can slip between them.
    const after = this.parseEventId(lastEventId);
    const replay: QueueItem[] = [];
    for (const msgId of queues.get(agentId) ?? []) {
      const record = messages.get(msgId);
      if (record && (after === null || record.deliver_seq > after)) {
        replay.push({
          id: this.eventId(record.deliver_seq),
          seq: record.deliver_seq,
          event: { kind: "message", message: record.message },
          msgId,
          reach: "backlog",
        });
      }
    }
    for (const msgId of untaken.get(agentId) ?? []) {
      const record = messages.get(msgId);
      const seq = record?.outcome_seq ?? 0;
      if (record?.outcome && (after === null || seq > after)) {
        replay.push({
          id: this.eventId(seq),
          seq,
          event: { kind: "outcome", outcome: record.outcome },
          msgId,
          reach: "backlog",
        });
      }
    }
    replay.sort((a, b) => a.seq - b.seq);
    const feed = new InboxFeed(this.feedDeps(agentId), replay, peers);
    const open = setOf(this.streams, agentId);
    open.add(feed);
    this.grace.opened(agentId);
    this.state.pending.delete(agentId);
    const max = this.state.limits.maxStreamsPerAgent;
    // The oldest goes, not the newcomer: a client reconnecting past its own half-dead streams must get in.
    while (max > 0 && open.size > max) {
      const oldest = open.values().next().value as InboxFeed;
      open.delete(oldest);
      oldest.close();
    }
    if (signal) {
      if (signal.aborted) feed.detach();
      else signal.addEventListener("abort", () => feed.detach(), { once: true });
    }
    return feed;
  }

  /** An event for one agent's open streams (none open: nothing is built; a stream opened later replays it). */
  publish(agentId: string, seq: number, event: InboxEvent, msgId: string): void {
    const open = this.streams.get(agentId);
    if (!open) return;
    // An agent's only stream has no one to share the event's frame with (see Reach).
    const item: QueueItem = {
      id: this.eventId(seq),
      seq,
      event,
      msgId,
      reach: open.size === 1 ? "one" : undefined,
    };
    for (const stream of open) stream.push(item);
  }

  /** A peers change to every open stream that takes them. */
  broadcast(item: QueueItem): void {
    for (const streams of this.streams.values()) {
      for (const stream of streams) if (stream.peers) stream.push(item);
    }
  }

  /** End an agent's streams (it left or was removed). */
  endAgent(agentId: string): void {
    for (const stream of this.streams.get(agentId) ?? []) stream.end();
    this.streams.delete(agentId);
    this.grace.opened(agentId);
  }

  /** End every stream (the hub is closing). */
  endAll(): void {
    for (const streams of this.streams.values()) for (const stream of streams) stream.end();
    this.grace.clear();
  }

  /** What an inbox feed needs from the backend (shared by all of one agent's feeds). */
  private feedDeps(agentId: string): InboxFeedDeps {
    return {
      isDurable: (seq) => seq <= this.durableSeq,
      waitDurable: (feed) => this.waitDurable(feed),
      stale: (item) =>
        item.event.kind === "message" && this.state.messages.stateOf(item.msgId ?? "") === "final",
      undeliverable: (item, error) => this.undeliverable(item, error),
      handed: (item) => {
        if (item.event.kind === "message") this.state.handedOut.add(item.event.message.msg_id);
      },
      release: (feed) => {
        const set = this.streams.get(agentId);
        if (!set?.delete(feed)) return;
        if (set.size > 0) return;
        this.streams.delete(agentId);
        if (!this.state.closed) this.grace.closed(agentId);
      },
    };
  }

  /**
   * Nothing leaves the hub before it is on disk: a restart never takes back
   * an event. Feeds holding an event past what is known durable wait here for
   * the store's next flush, all on one promise.
   */
  private waitDurable(feed: InboxFeed): void {
    this.waiting.add(feed);
    if (this.watchingFlush) return;
    this.watchingFlush = true;
    // Everything numbered so far was written before this flush was asked for, so it is in it.
    this.flushTarget = this.state.seq;
    this.state.store.flush().then(this.flushed, this.flushFailed);
  }

  private readonly flushed = (): void => this.wake(false);
  private readonly flushFailed = (): void => this.wake(true);

  private wake(failed: boolean): void {
    this.watchingFlush = false;
    if (!failed) this.durableSeq = Math.max(this.durableSeq, this.flushTarget);
    // Swapped, not copied: a feed whose next event came after the target asks again, for the
    // commit that holds it, into the fresh set.
    const feeds = this.waiting;
    this.waiting = this.waking;
    this.waking = feeds;
    for (const waiting of feeds) {
      if (failed) waiting.storeFailed();
      else waiting.durable();
    }
    feeds.clear();
  }

  /** The id a resuming subscriber passes back as Last-Event-ID. */
  eventId(seq: number): string {
    return `${this.state.store.epoch}.${seq}`;
  }

  /** The sequence number after which to resume, or null for a full replay (new stream, other epoch). */
  private parseEventId(id: string | null): number | null {
    if (!id) return null;
    const [epoch, seq] = id.split(".");
    const n = Number(seq);
    if (epoch !== this.state.store.epoch || !Number.isSafeInteger(n) || n < 0) return null;
    return n;
  }
}

/**
 * One agent's open inbox stream as the backend feeds it: the replay computed
 * at subscribe time, then live events, each handed on only once it is durable
 * (a restart never takes back an event), in order. A push feed: the hub's SSE
 * writer attaches and is called per event; other consumers iterate it.
 */
import type { InboxItem } from "../../contract/router.ts";
import { type FeedSink, iterateFeed, type PushFeed, type Reach } from "../../lib/push-feed.ts";

/**
 * One inbox event as the feeds hold it, and as the stream takes it (its `id`
 * and `event`): built once per event, not copied per hand-over.
 * `reach`: whether other streams are handed the same item (see Reach).
 */
export type QueueItem = InboxItem & { seq: number; msgId?: string; reach?: Reach | undefined };

export interface InboxFeedDeps {
  /** Already durable up to here: such events go out at once. */
  isDurable(seq: number): boolean;
  /**
   * This feed holds an event that is not on disk yet: call its `durable()`
   * once the store has committed (or `storeFailed()` if it could not).
   */
  waitDurable(feed: InboxFeed): void;
  /** An event that became pointless while it waited (its message got answered meanwhile). */
  stale(item: QueueItem): boolean;
  /**
   * The consumer could not take this event (it threw: e.g. the message cannot
   * be serialized). The feed skips it and goes on; the backend ends that one
   * message with an error outcome for its sender.
   */
  undeliverable(item: QueueItem, error: unknown): void;
  /** The consumer took this event (written to its stream, not yet necessarily read). */
  handed(item: QueueItem): void;
  /** The consumer went away: forget this feed. */
  release(feed: InboxFeed): void;
}

export class InboxFeed implements PushFeed<InboxItem> {
  private readonly deps: InboxFeedDeps;
  private queue: QueueItem[];
  /** Index of the next queued item (the array is only compacted once drained). */
  private head = 0;
  private sink: FeedSink<InboxItem> | null = null;
  private draining = false;
  /** The consumer asked to hold events (its reader is behind); they wait here, in order. */
  private paused = false;
  private ended = false;
  private released = false;

  /** This stream takes peers changes (presence broadcasts). */
  readonly peers: boolean;

  constructor(deps: InboxFeedDeps, replay: QueueItem[], peers = true) {
    this.deps = deps;
    this.queue = replay;
    this.peers = peers;
  }

  /** A live event from the backend. */
  push(item: QueueItem): void {
    if (this.ended) return;
    const sink = this.sink;
    if (sink && !this.draining && !this.paused && this.pending() === 0 && this.deps.isDurable(item.seq)) {
      if (!this.hand(sink, item)) this.paused = true;
      return;
    }
    this.queue.push(item);
    if (sink && !this.paused) this.drain();
  }

  /** The backend ends the stream: what is queued still goes out first. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.sink && !this.draining && this.pending() === 0) this.finish();
  }

  /** The backend ends the stream now, dropping what it holds (the client resumes by id if it is still there). */
  close(): void {
    this.ended = true;
    this.queue = [];
    this.head = 0;
    // Not attached yet: attach() sees it ended and finishes at once.
    if (this.sink && !this.draining) this.finish();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.sink && (this.pending() > 0 || this.ended)) this.drain();
  }

  attach(sink: FeedSink<InboxItem>): void {
    if (this.sink || this.released) return;
    this.sink = sink;
    if (this.pending() > 0) this.drain();
    else if (this.ended) this.finish();
  }

  detach(): void {
    this.ended = true;
    this.sink = null;
    this.queue = [];
    this.head = 0;
    this.release();
  }

  private pending(): number {
    return this.queue.length - this.head;
  }

  [Symbol.asyncIterator](): AsyncIterator<InboxItem> {
    return iterateFeed(this);
  }

  /** The store committed: events that waited for it may go now. */
  durable(): void {
    if (this.sink && !this.paused) this.drain();
  }

  /** The store failed: end the stream; the client resumes from its last id once the hub is healthy. */
  storeFailed(): void {
    this.ended = true;
    this.queue = [];
    this.head = 0;
    if (this.sink && !this.draining) this.finish();
  }

  /**
   * Hand on what is queued, in order, up to the first event not on disk yet;
   * that one waits for the store's next commit (one callback per commit for
   * every waiting feed, not a promise per event).
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.pending() > 0 && this.sink && !this.paused) {
        const item = this.queue[this.head] as QueueItem;
        if (!this.deps.isDurable(item.seq)) {
          this.deps.waitDurable(this);
          return;
        }
        this.head++;
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        }
        if (this.sink && !this.hand(this.sink, item)) this.paused = true;
      }
    } finally {
      this.draining = false;
    }
    if (this.ended && this.sink && this.pending() === 0) this.finish();
  }

  /** Hand one event to the sink; false when it asks to hold the next ones. One bad event never ends the feed. */
  private hand(sink: FeedSink<InboxItem>, item: QueueItem): boolean {
    if (this.deps.stale(item)) return true;
    let more: boolean;
    try {
      more = sink.next(item, item.reach) !== false;
    } catch (error) {
      this.deps.undeliverable(item, error);
      return true;
    }
    this.deps.handed(item);
    return more;
  }

  private finish(): void {
    const sink = this.sink;
    this.sink = null;
    this.release();
    sink?.end();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.deps.release(this);
  }
}

/**
 * Message ids in the order they fall due, for the sweep: entries are pushed
 * with a due time that only grows (now plus a fixed delay), so the sweep takes
 * what is due from the front instead of scanning every message each tick.
 * An entry only says "look at this message then": the sweep checks the
 * message itself, so an entry for a message that changed or went is skipped.
 * Such entries are told to the queue (forgot), which drops them once they are
 * most of it, so it holds about as many entries as messages that still need
 * one, not one per message of the whole delay. If the clock steps back,
 * entries pushed after it wait behind earlier ones: late by that step, never
 * early.
 */
export class DueQueue {
  private dues: number[] = [];
  private ids: string[] = [];
  private head = 0;
  /** Entries said to be pointless since the last compaction (an upper bound). */
  private stale = 0;
  private taking = false;
  private readonly live: (id: string) => boolean;

  /** `live`: whether the message with this id still needs its entry. */
  constructor(live: (id: string) => boolean) {
    this.live = live;
  }

  get size(): number {
    return this.ids.length - this.head;
  }

  push(due: number, id: string): void {
    this.dues.push(due);
    this.ids.push(id);
  }

  /** One entry no longer matters (its message settled, went, or its reply was taken). */
  forgot(): void {
    this.stale += 1;
    if (!this.taking) this.compactIfStale();
  }

  /** Hand every id due by `now` to `take`, in order, and forget it. */
  takeDue(now: number, take: (id: string) => void): void {
    this.taking = true;
    try {
      const { dues, ids } = this;
      while (this.head < ids.length && (dues[this.head] as number) <= now) {
        const id = ids[this.head] as string;
        this.head += 1;
        take(id);
      }
    } finally {
      this.taking = false;
    }
    if (this.head === this.ids.length) {
      this.dues = [];
      this.ids = [];
      this.head = 0;
      this.stale = 0;
    } else if (this.head > 1024 && this.head * 2 > this.ids.length) {
      // Drop the taken front now and then (amortised: each entry is copied at most about once).
      this.dues = this.dues.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
    this.compactIfStale();
  }

  /** Once most entries are pointless, keep only the live ones, in order (amortised over the forgotten). */
  private compactIfStale(): void {
    if (this.stale < 1024 || this.stale * 2 < this.size) return;
    const dues: number[] = [];
    const ids: string[] = [];
    for (let i = this.head; i < this.ids.length; i++) {
      const id = this.ids[i] as string;
      if (!this.live(id)) continue;
      dues.push(this.dues[i] as number);
      ids.push(id);
    }
    this.dues = dues;
    this.ids = ids;
    this.head = 0;
    this.stale = 0;
  }
}

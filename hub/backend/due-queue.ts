/**
 * Message ids in the order they fall due, for the sweep: entries are pushed
 * with a due time that only grows (now plus a fixed delay), so the sweep takes
 * what is due from the front instead of scanning every message each tick.
 * An entry only says "look at this message then": the sweep checks the
 * message itself, so an entry for a message that changed or went is skipped.
 * If the clock steps back, entries pushed after it wait behind earlier ones:
 * late by that step, never early.
 */
export class DueQueue {
  private dues: number[] = [];
  private ids: string[] = [];
  private head = 0;

  get size(): number {
    return this.ids.length - this.head;
  }

  push(due: number, id: string): void {
    this.dues.push(due);
    this.ids.push(id);
  }

  /** Hand every id due by `now` to `take`, in order, and forget it. */
  takeDue(now: number, take: (id: string) => void): void {
    const { dues, ids } = this;
    while (this.head < ids.length && (dues[this.head] as number) <= now) {
      const id = ids[this.head] as string;
      this.head += 1;
      take(id);
    }
    if (this.head === ids.length) {
      this.dues = [];
      this.ids = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > ids.length) {
      // Drop the taken front now and then (amortised: each entry is copied at most about once).
      this.dues = this.dues.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }
}

/** An unbounded single-consumer queue: push from anywhere, `await next()` in a loop; undefined once ended. */
export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: ((value: T | undefined) => void) | null = null;
  private ended = false;

  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve(item);
      return;
    }
    this.items.push(item);
  }

  next(): Promise<T | undefined> {
    if (this.head < this.items.length) {
      const item = this.items[this.head++] as T;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve(item);
    }
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Stop: the consumer gets what is still queued, then undefined. */
  end(): void {
    this.ended = true;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve(undefined);
    }
  }
}

/**
 * The timeouts of one connection's calls, on a single timer. The calls share
 * one timeout, so their deadlines come in the order they started and the
 * timer only ever waits for the oldest. (A setTimeout per call cost a timer
 * list insert and removal per call, and a new list whenever the previous
 * call's had emptied.) The timer holds the process open only while a call
 * is waiting, as the per-call timers did.
 */
export class Deadlines<K> {
  private readonly waiting = new Map<K, number>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly ms: number;
  private readonly expire: (key: K) => void;

  constructor(ms: number, expire: (key: K) => void) {
    this.ms = ms;
    this.expire = expire;
  }

  add(key: K): void {
    this.waiting.set(key, performance.now() + this.ms);
    if (this.timer) {
      if (this.waiting.size === 1) this.timer.ref();
    } else if (!this.sweeping) this.arm(this.ms);
  }

  delete(key: K): void {
    if (this.waiting.delete(key) && this.waiting.size === 0) this.timer?.unref();
  }

  clear(): void {
    this.waiting.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.sweep(), ms);
  }

  private sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    this.sweeping = true;
    try {
      for (const [key, deadline] of this.waiting) {
        if (deadline > now) break;
        this.waiting.delete(key);
        this.expire(key);
      }
    } finally {
      this.sweeping = false;
      // The oldest call still waiting (one that an expiry started included) sets the next wake-up.
      const next = this.waiting.values().next();
      if (!next.done) this.arm(Math.max(1, next.value - performance.now()));
    }
  }
}

/**
 * Receiver acks, coalesced per client, and sent alone only when they must be.
 * An ack is a receipt ("delivered"), not the answer: the answer (a settle)
 * makes the message final, so an id the app settles within the window needs
 * no ack at all, and pending ids ride along with whatever the client sends
 * next (a reply, a send, a card update: `take()`). Only when nothing else
 * goes within the window after the first pending id do they go alone, all in
 * one call; at most one call is in flight. A lost ack costs nothing but the
 * `delivered` flag: the hub keeps the message until it is settled either way.
 */

const MAX_IDS_PER_CALL = 1000;
export const ACK_WINDOW_MS = 200;

export class AckBatcher {
  private readonly pending = new Set<string>();
  private readonly send: (ids: string[]) => Promise<void>;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly windowMs: number;

  constructor(send: (ids: string[]) => Promise<void>, windowMs = ACK_WINDOW_MS) {
    this.send = send;
    this.windowMs = windowMs;
  }

  get size(): number {
    return this.pending.size;
  }

  add(id: string): void {
    this.pending.add(id);
    this.schedule();
  }

  /** A lone call at the end of the window, unless the ids have ridden along or been dropped by then. */
  private schedule(delayMs = this.windowMs): void {
    if (this.timer || this.inflight || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
    this.timer.unref();
  }

  private idle(): void {
    if (this.pending.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The message was settled: its ack is moot. */
  drop(id: string): void {
    this.pending.delete(id);
    this.idle();
  }

  /**
   * Hand the pending ids (at most one call's worth) to a call that carries
   * them; if that call fails, `restore()` them.
   */
  take(): string[] | undefined {
    if (this.pending.size === 0) return undefined;
    const ids: string[] = [];
    for (const id of this.pending) {
      ids.push(id);
      if (ids.length >= MAX_IDS_PER_CALL) break;
    }
    for (const id of ids) this.pending.delete(id);
    this.idle();
    return ids;
  }

  /** The call that carried these ids failed: they are pending again. */
  restore(ids: readonly string[]): void {
    for (const id of ids) this.pending.add(id);
    this.schedule();
  }

  /**
   * Send what is pending now. A failure leaves it pending, tried again after
   * a few windows (a hub that is down is not hammered) or sooner with the next call that carries acks.
   */
  async flush(): Promise<void> {
    if (this.inflight) return this.inflight;
    clearTimeout(this.timer);
    this.timer = undefined;
    let failed = false;
    this.inflight = (async () => {
      // What was pending now, in calls of at most MAX_IDS_PER_CALL; what arrives meanwhile waits for the next window.
      const due = this.pending.size;
      for (let sent = 0; sent < due; ) {
        const ids = this.take();
        if (!ids) break;
        try {
          await this.send(ids);
        } catch {
          for (const id of ids) this.pending.add(id);
          failed = true;
          return;
        }
        sent += ids.length;
      }
    })().finally(() => {
      this.inflight = undefined;
      this.schedule(failed ? this.windowMs * 10 : this.windowMs);
    });
    return this.inflight;
  }
}

/**
 * Message ids this client has already handed to the app and settled, so a
 * redelivery (a stream resumed or replayed while the settle was on its way)
 * is never handed out twice. Bounded: the oldest are forgotten first, long
 * after the hub has stopped replaying them.
 */
export class RecentIds {
  private readonly ids = new Set<string>();
  private readonly limit: number;

  constructor(limit = 10_000) {
    this.limit = limit;
  }

  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.limit) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }
}

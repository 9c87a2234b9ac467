/**
 * Receiver acks, coalesced per client: at most one ack call per window and
 * one in flight. An id arriving after a quiet spell goes out on the next turn
 * of the event loop (a sender sees `delivered` at once on a quiet hub); ids
 * arriving within a window of the last call wait for the window's end and go
 * together. So a busy receiver sends one ack request per window for all it
 * got, however the traffic is spread. An id whose message the app has
 * settled needs no ack (settling made it final on the hub), so it is dropped.
 */

const MAX_IDS_PER_CALL = 1000;
export const ACK_WINDOW_MS = 200;

export class AckBatcher {
  private readonly pending = new Set<string>();
  private readonly send: (ids: string[]) => Promise<void>;
  private inflight: Promise<void> | undefined;
  private scheduled = false;
  private lastCall = Number.NEGATIVE_INFINITY;
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
    if (!this.inflight) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = Math.max(0, this.lastCall + this.windowMs - performance.now());
    setTimeout(() => {
      this.scheduled = false;
      void this.flush();
    }, wait).unref();
  }

  /** The message was settled: its ack is moot. */
  drop(id: string): void {
    this.pending.delete(id);
  }

  /** Send what is pending; a failure leaves it pending for the next add or flush (the hub re-sends unacked ids on reconnect). */
  async flush(): Promise<void> {
    if (this.inflight) return this.inflight;
    let failed = false;
    this.inflight = (async () => {
      while (this.pending.size > 0) {
        const ids: string[] = [];
        for (const id of this.pending) {
          ids.push(id);
          if (ids.length >= MAX_IDS_PER_CALL) break;
        }
        this.lastCall = performance.now();
        try {
          await this.send(ids);
        } catch {
          // Retried with the next id or flush (the heartbeat flushes too).
          failed = true;
          return;
        }
        for (const id of ids) this.pending.delete(id);
        // What arrived meanwhile waits for the window (a timer is set when the call ends).
        if (this.pending.size > 0 && performance.now() - this.lastCall < this.windowMs) break;
      }
    })().finally(() => {
      this.inflight = undefined;
      if (this.pending.size > 0 && !failed) this.schedule();
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

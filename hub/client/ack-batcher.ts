/**
 * Receiver acks, coalesced per client: ids gathered over a short window go
 * in one call, and at most one ack call is in flight; ids that arrive
 * meanwhile wait for it and then go together. So a client receiving fast
 * sends one ack request per window or round trip, whichever is longer, for
 * everything it got meanwhile. An id whose message the app has settled
 * needs no ack (settling made it final on the hub), so it is dropped.
 */

const MAX_IDS_PER_CALL = 1000;
/** Short enough that a sender sees `delivered` almost at once on a quiet hub. */
const WINDOW_MS = 20;

export class AckBatcher {
  private readonly pending = new Set<string>();
  private readonly send: (ids: string[]) => Promise<void>;
  private inflight: Promise<void> | undefined;
  private scheduled = false;

  constructor(send: (ids: string[]) => Promise<void>) {
    this.send = send;
  }

  get size(): number {
    return this.pending.size;
  }

  add(id: string): void {
    this.pending.add(id);
    if (this.scheduled || this.inflight) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      void this.flush();
    }, WINDOW_MS).unref();
  }

  /** The message was settled: its ack is moot. */
  drop(id: string): void {
    this.pending.delete(id);
  }

  /** Send what is pending; a failure leaves it pending for the next add or flush (the hub re-sends unacked ids on reconnect). */
  async flush(): Promise<void> {
    if (this.inflight) return this.inflight;
    this.inflight = (async () => {
      while (this.pending.size > 0) {
        const ids: string[] = [];
        for (const id of this.pending) {
          ids.push(id);
          if (ids.length >= MAX_IDS_PER_CALL) break;
        }
        try {
          await this.send(ids);
        } catch {
          return;
        }
        for (const id of ids) this.pending.delete(id);
      }
    })().finally(() => {
      this.inflight = undefined;
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

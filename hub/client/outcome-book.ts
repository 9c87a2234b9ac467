/**
 * What this agent sent, as far as its hub client knows: each message's
 * latest outcome (pending until an outcome event or a `get` says more), and
 * the awaits parked on it until it turns final, times out or is cancelled.
 */
import { ComsError } from "../../contract/errors.ts";
import type { Outcome } from "../../contract/schemas.ts";

interface Waiter {
  resolve(outcome: Outcome): void;
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Asked every `pollMs` while waiting: the stream brings outcomes, a poll covers a stream that is down. */
  poll(): void;
  pollMs?: number;
  /**
   * Asked once at the deadline, before TIMEOUT is said: the hub's verdict (a
   * message waited on for its whole lifetime has just EXPIRED there, which is
   * what the caller must hear, not that it is still pending).
   */
  lastLook?(): Promise<Outcome>;
}

/** How long the last look at the deadline may take before TIMEOUT is said anyway. */
const LAST_LOOK_MS = 2_000;

export class OutcomeBook {
  private readonly outcomes = new Map<string, Outcome>();
  private readonly waiters = new Map<string, Set<Waiter>>();

  known(msgId: string): Outcome | undefined {
    return this.outcomes.get(msgId);
  }

  /** A freshly accepted send: pending, not delivered (unless something newer is known already). */
  accepted(msgId: string): void {
    if (!this.outcomes.has(msgId))
      this.outcomes.set(msgId, { state: "pending", msg_id: msgId, delivered: false });
  }

  /** Record an outcome (a final one is never replaced by a pending one) and wake its awaits if final. */
  apply(outcome: Outcome): void {
    const known = this.outcomes.get(outcome.msg_id);
    if (known && known.state !== "pending" && outcome.state === "pending") return;
    this.outcomes.set(outcome.msg_id, outcome);
    if (outcome.state === "pending") return;
    for (const waiter of this.waiters.get(outcome.msg_id) ?? []) waiter.resolve(outcome);
    this.waiters.delete(outcome.msg_id);
  }

  /** Ids somebody is waiting on (re-checked after a reconnect). */
  awaited(): string[] {
    return [...this.waiters.keys()];
  }

  /** Wait for a final outcome: resolves with it, or TIMEOUT; rejects CANCELLED on the signal. */
  wait(msgId: string, opts: WaitOptions): Promise<Outcome> {
    const { signal, timeoutMs } = opts;
    return new Promise<Outcome>((resolve, reject) => {
      const set = this.waiters.get(msgId) ?? new Set<Waiter>();
      this.waiters.set(msgId, set);
      const finish = () => {
        clearTimeout(timer);
        clearInterval(poll);
        signal?.removeEventListener("abort", onAbort);
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(msgId) === set) this.waiters.delete(msgId);
      };
      const waiter: Waiter = {
        resolve: (outcome) => {
          finish();
          resolve(outcome);
        },
      };
      const onAbort = () => {
        finish();
        reject(new ComsError("CANCELLED", "cancelled while waiting for the reply"));
      };
      const timedOut = (): Outcome => ({
        state: "error",
        msg_id: msgId,
        code: "TIMEOUT",
        message: `no reply within ${timeoutMs} ms`,
      });
      const timer = setTimeout(() => {
        if (!opts.lastLook) return waiter.resolve(timedOut());
        let bound: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((done) => {
          bound = setTimeout(() => done(undefined), LAST_LOOK_MS);
        });
        void Promise.race([opts.lastLook().catch(() => undefined), late]).then((outcome) => {
          clearTimeout(bound);
          // Resolving twice is harmless: an outcome that arrived meanwhile has already ended the wait.
          waiter.resolve(outcome && outcome.state !== "pending" ? outcome : timedOut());
        });
      }, timeoutMs);
      const poll = setInterval(opts.poll, opts.pollMs ?? 5_000);
      poll.unref();
      signal?.addEventListener("abort", onAbort);
      set.add(waiter);
    });
  }

  /** End every await with CANCELLED (the client is closing). */
  cancelAll(message: string): void {
    for (const [msgId, set] of this.waiters) {
      for (const waiter of set) waiter.resolve({ state: "error", msg_id: msgId, code: "CANCELLED", message });
    }
    this.waiters.clear();
  }
}

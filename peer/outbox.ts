/**
 * The sending side of one agent: what it sent, the latest outcome of each
 * (kept current by a watch subscription on the recipient), and the callers
 * blocked in `await`. Answers `get` locally, without a round trip.
 */
import { ComsError } from "../contract/errors.ts";
import type { ErrorCode, Outcome } from "../contract/schemas.ts";
import { outcomeBytes, type Retained, type RetentionLimit } from "./retention.ts";

interface Sent {
  to: string;
  toId: string;
  outcome: Outcome;
  /** Made by the first `wait`: most sends are never awaited. */
  waiters?: Set<(outcome: Outcome) => void>;
  /** Ends the watch subscription. */
  stop?: () => void;
  /** What it counts against the retention limit once final. */
  bytes: number;
}

export class Outbox {
  private readonly sent = new Map<string, Sent>();
  private finals = 0;
  private finalBytes = 0;
  /** Finished outcomes kept for late `get`/`await` calls; the oldest go first. */
  private readonly keep: RetentionLimit;

  constructor(keep: RetentionLimit) {
    this.keep = keep;
  }

  /** Final outcomes kept now, and their approximate bytes. */
  retained(): Retained {
    return { count: this.finals, bytes: this.finalBytes };
  }

  add(msgId: string, to: string, toId: string): void {
    if (this.sent.has(msgId)) return;
    this.sent.set(msgId, {
      to,
      toId,
      outcome: { state: "pending", msg_id: msgId, delivered: false },
      bytes: 0,
    });
  }

  /** Drop a message whose send failed (it was never accepted). */
  forget(msgId: string): void {
    const entry = this.sent.get(msgId);
    if (entry?.outcome.state !== "pending") return;
    entry.stop?.();
    this.sent.delete(msgId);
  }

  /** An outcome reported by an agent: only the one the message went to may change it. */
  updateFrom(toId: string, msgId: string, outcome: Outcome): void {
    if (this.sent.get(msgId)?.toId === toId) this.update(msgId, outcome);
  }

  has(msgId: string): boolean {
    return this.sent.has(msgId);
  }

  setStop(msgId: string, stop: () => void): void {
    const entry = this.sent.get(msgId);
    if (entry) entry.stop = stop;
  }

  get(msgId: string): Outcome {
    return this.sent.get(msgId)?.outcome ?? unknown(msgId);
  }

  isFinal(msgId: string): boolean {
    const outcome = this.sent.get(msgId)?.outcome;
    return outcome !== undefined && outcome.state !== "pending";
  }

  /** Record a newer outcome; a final one wakes the waiters and ends the watch. */
  update(msgId: string, outcome: Outcome): void {
    const entry = this.sent.get(msgId);
    if (entry?.outcome.state !== "pending") return;
    entry.outcome = outcome;
    if (outcome.state === "pending") return;
    entry.stop?.();
    entry.stop = undefined;
    const waiters = entry.waiters;
    entry.waiters = undefined;
    if (waiters) for (const waiter of waiters) waiter(outcome);
    entry.bytes = outcomeBytes(outcome);
    this.finals++;
    this.finalBytes += entry.bytes;
    if (this.finals > this.keep.count || this.finalBytes > this.keep.bytes) this.forgetOldest();
  }

  fail(msgId: string, code: ErrorCode, message: string): void {
    this.update(msgId, { state: "error", msg_id: msgId, code, message });
  }

  /** Pending messages sent to one agent (to fail them when it is gone). */
  pendingTo(toId: string): string[] {
    const ids: string[] = [];
    for (const [id, entry] of this.sent)
      if (entry.toId === toId && entry.outcome.state === "pending") ids.push(id);
    return ids;
  }

  /**
   * Wait for the final outcome. Resolves with a TIMEOUT outcome after
   * `timeoutMs` (the message itself stays pending); rejects with CANCELLED
   * when the signal aborts.
   */
  wait(msgId: string, timeoutMs: number, signal?: AbortSignal): Promise<Outcome> {
    const entry = this.sent.get(msgId);
    if (entry?.outcome.state !== "pending") return Promise.resolve(this.get(msgId));
    if (signal?.aborted) return Promise.reject(new ComsError("CANCELLED", "await was cancelled"));
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        entry.waiters?.delete(onOutcome);
        signal?.removeEventListener("abort", onAbort);
      };
      const onOutcome = (outcome: Outcome) => {
        done();
        resolve(outcome);
      };
      const onAbort = () => {
        done();
        reject(new ComsError("CANCELLED", "await was cancelled"));
      };
      const timer = setTimeout(() => {
        done();
        resolve({
          state: "error",
          msg_id: msgId,
          code: "TIMEOUT",
          message: `no reply from ${entry.to} within ${timeoutMs} ms (still pending)`,
        });
      }, timeoutMs);
      entry.waiters ??= new Set();
      entry.waiters.add(onOutcome);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Closing: stop every watch and reject every waiter. */
  closeAll(reason: string): void {
    for (const entry of this.sent.values()) {
      entry.stop?.();
      entry.stop = undefined;
      const waiters = [...(entry.waiters ?? [])];
      entry.waiters = undefined;
      for (const waiter of waiters)
        waiter({ state: "error", msg_id: entry.outcome.msg_id, code: "CANCELLED", message: reason });
    }
  }

  /** Down to half of each limit, so that trimming is rare (amortised), not once per outcome. */
  private forgetOldest(): void {
    for (const [id, entry] of this.sent) {
      if (this.finals <= this.keep.count / 2 && this.finalBytes <= this.keep.bytes / 2) break;
      if (entry.outcome.state === "pending") continue;
      this.sent.delete(id);
      this.finals--;
      this.finalBytes -= entry.bytes;
    }
  }
}

function unknown(msgId: string): Outcome {
  return {
    state: "error",
    msg_id: msgId,
    code: "BAD_INPUT",
    message: `no message ${msgId} was sent from this session`,
  };
}

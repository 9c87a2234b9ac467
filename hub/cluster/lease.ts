/**
 * The project lease: which one of the project's hubs runs the backend. Taken
 * with SET NX PX and a random token, renewed well before it expires, given
 * up by a script that deletes it only if it is still ours. A holder that
 * cannot renew (Redis down, cut off) considers it lost a margin before Redis
 * would let another hub take it, and steps down; its writes are fenced by
 * the same token anyway (hub/store/redis.ts), so a late step-down never
 * costs data, only a few refused requests.
 */
import { randomBytes } from "node:crypto";

export interface LeaseCommands {
  set(key: string, value: string, options: { NX: true; PX: number }): Promise<string | null>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class Lease {
  readonly token = randomBytes(16).toString("hex");
  private readonly redis: LeaseCommands;
  private readonly key: string;
  private readonly ttlMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** When the last successful renewal was sent: the lease is ours until this + ttl at the earliest. */
  private heldSince = 0;
  private lost = false;
  onLost: (why: string) => void = () => {};

  constructor(redis: LeaseCommands, key: string, ttlMs: number) {
    this.redis = redis;
    this.key = key;
    this.ttlMs = ttlMs;
  }

  /** Take the lease if nobody holds it; on success it is renewed until lost or released. */
  async acquire(): Promise<boolean> {
    const sentAt = Date.now();
    const ok = (await this.redis.set(this.key, this.token, { NX: true, PX: this.ttlMs })) === "OK";
    if (!ok) return false;
    this.heldSince = sentAt;
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 5)));
    this.timer.unref();
    return true;
  }

  private async renew(): Promise<void> {
    if (this.lost) return;
    const sentAt = Date.now();
    // Also when renewals hang rather than fail: we give up before Redis could hand the lease on.
    if (sentAt >= this.heldSince + this.ttlMs * 0.6)
      return this.lose("the lease could not be renewed in time");
    try {
      const ok = await this.redis.eval(RENEW_SCRIPT, {
        keys: [this.key],
        arguments: [this.token, String(this.ttlMs)],
      });
      if (Number(ok) === 1) this.heldSince = sentAt;
      else return this.lose("another hub holds the lease now");
    } catch {
      // Renewals go on until the deadline above.
    }
  }

  private lose(why: string): void {
    if (this.lost) return;
    this.lost = true;
    clearInterval(this.timer);
    this.onLost(why);
  }

  /** Stop renewing and hand the lease over at once (if it is still ours). */
  async release(): Promise<void> {
    this.lost = true;
    clearInterval(this.timer);
    await this.redis.eval(RELEASE_SCRIPT, { keys: [this.key], arguments: [this.token] }).catch(() => {});
  }
}

/**
 * The hub's two rate limits: a token bucket per sending agent (sustained rate
 * plus a burst), and a lockout per remote address after repeated wrong hub
 * tokens, so a guesser cannot try tokens at line speed.
 */

/** Keys tracked at most; past this the idlest are dropped (a fresh key starts with a full bucket anyway). */
const MAX_KEYS = 10_000;

export class SendRateLimit {
  private readonly perSec: number;
  private readonly burst: number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** `perSec` 0 turns the limit off; `burst` defaults to twice the rate. */
  constructor(perSec: number, burst = 2 * perSec) {
    this.perSec = perSec;
    this.burst = Math.max(1, burst);
  }

  get enabled(): boolean {
    return this.perSec > 0;
  }

  /** Take one token for `key`: 0 when allowed, else how many ms until one is available (nothing taken). */
  take(key: string, now = Date.now()): number {
    if (!this.enabled) return 0;
    const previous = this.buckets.get(key);
    const elapsed = previous ? Math.max(0, now - previous.at) : 0;
    const tokens = previous
      ? Math.min(this.burst, previous.tokens + (elapsed * this.perSec) / 1000)
      : this.burst;
    this.buckets.delete(key);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return Math.max(1, Math.ceil(((1 - tokens) * 1000) / this.perSec));
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.buckets.size > MAX_KEYS) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return 0;
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}

export interface AuthLockoutOptions {
  /** Wrong tokens from one address within `windowMs` that trigger the lockout. */
  maxFailures: number;
  windowMs: number;
  /** How long every request from that address then gets 429. */
  lockoutMs: number;
}

export const DEFAULT_AUTH_LOCKOUT: AuthLockoutOptions = {
  maxFailures: 20,
  windowMs: 10_000,
  lockoutMs: 5_000,
};

export class AuthLockout {
  private readonly opts: AuthLockoutOptions;
  private readonly byAddress = new Map<string, { failures: number[]; until: number }>();

  constructor(opts: AuthLockoutOptions = DEFAULT_AUTH_LOCKOUT) {
    this.opts = opts;
  }

  /** Ms left in the lockout of `address`, 0 when it may try. */
  blockedFor(address: string, now = Date.now()): number {
    const entry = this.byAddress.get(address);
    if (!entry || entry.until <= now) return 0;
    return entry.until - now;
  }

  fail(address: string, now = Date.now()): void {
    const entry = this.byAddress.get(address) ?? { failures: [], until: 0 };
    this.byAddress.delete(address);
    entry.failures = entry.failures.filter((at) => now - at < this.opts.windowMs);
    entry.failures.push(now);
    if (entry.failures.length >= this.opts.maxFailures) {
      entry.until = now + this.opts.lockoutMs;
      entry.failures = [];
    }
    this.byAddress.set(address, entry);
    if (this.byAddress.size > MAX_KEYS) {
      const oldest = this.byAddress.keys().next().value;
      if (oldest !== undefined) this.byAddress.delete(oldest);
    }
  }
}

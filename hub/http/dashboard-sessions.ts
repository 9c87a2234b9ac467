/**
 * Dashboard sign-ins: server-side sessions behind a random id that the page
 * keeps in memory and sends as a header (never a cookie: cookies ignore
 * ports, so every other server on the host would receive one), and
 * short-lived one-time codes the CLI prints (`pi-coms hub open`). Only sha256
 * digests of session ids and codes are kept, so a heap dump does not hand
 * out live sessions; both expire and both are capped in number.
 */
import { randomBytes, randomInt } from "node:crypto";
import { hashToken } from "../../lib/secrets.ts";

/** The request header that carries a dashboard session (admin.watch and sign-out only). */
export const SESSION_HEADER = "x-pi-coms-session";
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000;
export const DEFAULT_CODE_TTL_MS = 120_000;
/**
 * Wrong code guesses the hub takes, from any address, while codes are live;
 * the next one voids every live code. So a code meets at most this many
 * guesses in its life, however many addresses (all of 127/8 is loopback) guess.
 */
export const WRONG_CODE_BUDGET = 20;
/** Most live sessions (and codes); past that the oldest is dropped. */
const MAX_ENTRIES = 1000;
/** No 0/O/1/I/L: a code is read off a terminal and typed. 31 symbols. */
export const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const CODE_LENGTH = 8;
const CODE_SHAPE = /^[A-Z0-9]{4}-[A-Z0-9]{4}$/;
const SESSION_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

export type Redeemed = "ok" | "wrong" | "voided";

export class DashboardSessions {
  private readonly sessions = new Map<string, number>();
  private readonly codes = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly codeTtlMs: number;
  private wrongCodes = 0;

  constructor(opts: { ttlMs?: number; codeTtlMs?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.codeTtlMs = opts.codeTtlMs ?? DEFAULT_CODE_TTL_MS;
  }

  /** A new session: the id the page keeps in memory and how long it lives. */
  open(now = Date.now()): { id: string; expiresInSec: number } {
    const id = randomBytes(32).toString("base64url");
    remember(this.sessions, digest(id), now + this.ttlMs);
    return { id, expiresInSec: Math.floor(this.ttlMs / 1000) };
  }

  /** Whether `id` (the session header's value) is a live session. */
  valid(id: string | null | undefined, now = Date.now()): boolean {
    if (!id || !SESSION_SHAPE.test(id)) return false;
    const key = digest(id);
    const until = this.sessions.get(key);
    if (until === undefined) return false;
    if (until <= now) {
      this.sessions.delete(key);
      return false;
    }
    return true;
  }

  end(id: string | null | undefined): void {
    if (id && SESSION_SHAPE.test(id)) this.sessions.delete(digest(id));
  }

  /** A one-time code (XXXX-XXXX of 31 symbols, single use, short-lived) to sign in with instead of the token. */
  newCode(now = Date.now()): { code: string; expiresInSec: number } {
    let code = "";
    // randomInt draws without modulo bias: every symbol is equally likely.
    for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
    code = `${code.slice(0, 4)}-${code.slice(4)}`;
    this.forgetExpired(now);
    remember(this.codes, digest(code), now + this.codeTtlMs);
    return { code, expiresInSec: Math.floor(this.codeTtlMs / 1000) };
  }

  /**
   * Spend a code-shaped secret: "ok" once for a live code; "wrong" otherwise,
   * and the wrong guess is charged to the budget; "voided" when it was the
   * guess that used the budget up, which voids every live code.
   */
  redeem(code: string, now = Date.now()): Redeemed {
    const normal = code.trim().toUpperCase();
    this.forgetExpired(now);
    const key = digest(normal);
    if (CODE_SHAPE.test(normal) && this.codes.delete(key)) {
      if (this.codes.size === 0) this.wrongCodes = 0;
      return "ok";
    }
    // With no live code there is nothing to guess: typos then cost nothing.
    if (this.codes.size === 0) return "wrong";
    this.wrongCodes += 1;
    if (this.wrongCodes < WRONG_CODE_BUDGET) return "wrong";
    this.codes.clear();
    this.wrongCodes = 0;
    return "voided";
  }

  private forgetExpired(now: number): void {
    for (const [key, until] of this.codes) if (until <= now) this.codes.delete(key);
    if (this.codes.size === 0) this.wrongCodes = 0;
  }
}

/** Whether a secret typed at the form is meant as a one-time code (a hub token is never this short). */
export function looksLikeCode(secret: string): boolean {
  return CODE_SHAPE.test(secret.trim().toUpperCase());
}

function digest(value: string): string {
  return hashToken(value).toString("hex");
}

function remember(map: Map<string, number>, key: string, until: number): void {
  map.set(key, until);
  if (map.size > MAX_ENTRIES) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}

/**
 * Dashboard sign-ins: server-side sessions behind a random cookie, and
 * short-lived one-time codes the CLI prints (`pi-coms hub open`). Only sha256
 * digests of session ids and codes are kept, so a heap dump does not hand
 * out live sessions; both expire and both are capped in number.
 */
import { randomBytes } from "node:crypto";
import { hashToken } from "../../lib/secrets.ts";

export const SESSION_COOKIE = "pi_coms_session";
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000;
export const DEFAULT_CODE_TTL_MS = 120_000;
/** Most live sessions (and codes); past that the oldest is dropped. */
const MAX_ENTRIES = 1000;
/** No 0/O/1/I/L: a code is read off a terminal and typed. */
const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

export class DashboardSessions {
  private readonly sessions = new Map<string, number>();
  private readonly codes = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly codeTtlMs: number;

  constructor(opts: { ttlMs?: number; codeTtlMs?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.codeTtlMs = opts.codeTtlMs ?? DEFAULT_CODE_TTL_MS;
  }

  /** A new session: the id for the cookie and how long it lives. */
  open(now = Date.now()): { id: string; maxAgeSec: number } {
    const id = randomBytes(32).toString("base64url");
    remember(this.sessions, digest(id), now + this.ttlMs);
    return { id, maxAgeSec: Math.floor(this.ttlMs / 1000) };
  }

  /** Whether the request's Cookie header carries a live session. */
  valid(cookieHeader: string | undefined, now = Date.now()): boolean {
    const id = sessionId(cookieHeader);
    if (!id) return false;
    const key = digest(id);
    const until = this.sessions.get(key);
    if (until === undefined) return false;
    if (until <= now) {
      this.sessions.delete(key);
      return false;
    }
    return true;
  }

  end(cookieHeader: string | undefined): void {
    const id = sessionId(cookieHeader);
    if (id) this.sessions.delete(digest(id));
  }

  /** A one-time code (XXXX-XXXX, ~40 bits, single use, short-lived) to sign in with instead of the token. */
  newCode(now = Date.now()): { code: string; expiresInSec: number } {
    const bytes = randomBytes(8);
    let code = "";
    for (const byte of bytes) code += CODE_ALPHABET[byte % CODE_ALPHABET.length];
    code = `${code.slice(0, 4)}-${code.slice(4)}`;
    remember(this.codes, digest(code), now + this.codeTtlMs);
    return { code, expiresInSec: Math.floor(this.codeTtlMs / 1000) };
  }

  /** Spend a code: true once for a live code, false otherwise. */
  redeem(code: string, now = Date.now()): boolean {
    const normal = code.trim().toUpperCase();
    if (!/^[A-Z0-9]{4}-[A-Z0-9]{4}$/.test(normal)) return false;
    const key = digest(normal);
    const until = this.codes.get(key);
    this.codes.delete(key);
    return until !== undefined && until > now;
  }
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

function sessionId(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

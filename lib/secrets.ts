/** Tokens: how they are made and compared, the same way for P2P capabilities and hub credentials. */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** 256 random bits, URL-safe (it still never goes into a URL). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** Constant time whatever the lengths: both sides are compared as sha256 digests. */
export function sameDigest(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Constant time in the expected secret's length, without hashing (a request
 * path checks a secret on every call): a given secret of another length is
 * compared against the expected one itself, then refused, so the time does
 * not depend on where, or whether, the two differ.
 */
export function matchesSecret(given: string, expected: Buffer): boolean {
  const bytes = Buffer.from(given);
  const sameLength = bytes.length === expected.length;
  return timingSafeEqual(sameLength ? bytes : expected, expected) && sameLength;
}

export function tokensEqual(given: string, expected: string): boolean {
  return matchesSecret(given, Buffer.from(expected));
}

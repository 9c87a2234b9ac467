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

export function tokensEqual(given: string, expected: string): boolean {
  return sameDigest(hashToken(given), hashToken(expected));
}

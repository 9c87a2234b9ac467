/**
 * The hub's bearer token: given (flag or PI_COMS_NET_AUTH_TOKEN) or generated,
 * and kept in server.secret.json (0600 in a 0700 directory) so that local
 * clients of the same project find it. Never printed, never put in a URL.
 */
import { readJson, writeJsonAtomic } from "../lib/private-fs.ts";
import { newToken } from "../lib/secrets.ts";

export const MIN_TOKEN_LENGTH = 16;

export function readSecret(path: string): string | undefined {
  const data = readJson(path) as { token?: unknown } | undefined;
  return typeof data?.token === "string" && data.token.length > 0 ? data.token : undefined;
}

/** The token to serve with: the given one (stored), else the stored one, else a new random one (stored). */
export function resolveHubToken(path: string, given: string | undefined): string {
  if (given !== undefined) {
    if (given.length < MIN_TOKEN_LENGTH) {
      throw new Error(`the auth token must be at least ${MIN_TOKEN_LENGTH} characters`);
    }
    if (readSecret(path) !== given) writeJsonAtomic(path, { token: given, created_at: Date.now() });
    return given;
  }
  const stored = readSecret(path);
  if (stored) return stored;
  const token = newToken();
  writeJsonAtomic(path, { token, created_at: Date.now() });
  return token;
}

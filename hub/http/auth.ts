/**
 * The one request check both HTTP adapters run before tRPC sees a request:
 * the hub bearer token (constant time), then the optional agent credential,
 * which becomes the verified caller of the context.
 */
import type { Caller } from "../../contract/router.ts";
import { matchesSecret } from "../../lib/secrets.ts";
import type { HubBackend } from "../backend/backend.ts";
import { AuthLockout, type AuthLockoutOptions, DEFAULT_AUTH_LOCKOUT } from "../backend/rate-limit.ts";

export const AGENT_ID_HEADER = "x-pi-coms-agent-id";
export const AGENT_TOKEN_HEADER = "x-pi-coms-agent-token";

export type AuthResult =
  | { ok: true; caller: Caller | null }
  | { ok: false; status: 401; kind: "UNAUTHORIZED"; message: string }
  | { ok: false; status: 429; kind: "TOO_MANY_REQUESTS"; message: string; retryAfterSec: number };

/** A peer address, or how to look it up when it is needed. */
export type RemoteAddress = string | undefined | (() => string | undefined);

function addressOf(remote: RemoteAddress): string {
  return (typeof remote === "function" ? remote() : remote) ?? "unknown";
}

export class RequestAuth {
  private readonly token: Buffer;
  private readonly backend: HubBackend;
  private readonly lockout: AuthLockout;

  constructor(token: string, backend: HubBackend, lockout: AuthLockoutOptions = DEFAULT_AUTH_LOCKOUT) {
    this.token = Buffer.from(token);
    this.backend = backend;
    this.lockout = new AuthLockout(lockout);
  }

  /**
   * `remote` is the peer address (or how to get it, for a runtime where
   * asking costs: it is needed only for a wrong token): wrong tokens from it are counted, never
   * logged. The lockout only ever refuses wrong tokens: every local session
   * of a loopback hub shares one address, so refusing by address alone would
   * let any local process keep every agent off the hub. A right token is
   * always served, whatever else comes from its address.
   */
  check(header: (name: string) => string | null | undefined, remote: RemoteAddress = "unknown"): AuthResult {
    const authorization = header("authorization");
    if (!authorization) {
      return {
        ok: false,
        status: 401,
        kind: "UNAUTHORIZED",
        message: "missing hub token: send 'Authorization: Bearer <token>'",
      };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!matchesSecret(match?.[1] ?? "", this.token)) return this.refuseWrong(addressOf(remote));
    const id = header(AGENT_ID_HEADER);
    const agentToken = header(AGENT_TOKEN_HEADER);
    // A stale agent credential is not a transport error: the procedure answers UNAUTHORIZED and the client re-registers.
    const caller = id && agentToken ? this.backend.authenticate(id, agentToken) : null;
    return { ok: true, caller };
  }

  /**
   * A secret that is not the token (a dashboard one-time code), checked by
   * `verify` under the same lockout: while the address is locked out the
   * secret is not even looked at, so the lockout slows code guessing too
   * (a code is short; the token is not). A wrong one counts.
   */
  checkSecret(verify: () => boolean, remote = "unknown"): AuthResult {
    const locked = this.lockedOut(remote);
    if (locked) return locked;
    return verify() ? { ok: true, caller: null } : this.refuseWrong(remote);
  }

  /** A wrong token: 429 while its address is locked out, else 401 (counted towards the lockout). */
  private refuseWrong(remote: string): AuthResult {
    const locked = this.lockedOut(remote);
    if (locked) return locked;
    this.lockout.fail(remote);
    return {
      ok: false,
      status: 401,
      kind: "UNAUTHORIZED",
      message: "wrong hub token (it may have been rotated: re-read the secret)",
    };
  }

  private lockedOut(remote: string): AuthResult | undefined {
    const wait = this.lockout.blockedFor(remote);
    if (wait <= 0) return undefined;
    const retryAfterSec = Math.ceil(wait / 1000);
    return {
      ok: false,
      status: 429,
      kind: "TOO_MANY_REQUESTS",
      message: `too many wrong hub tokens or codes from this address: retry in ${retryAfterSec} s`,
      retryAfterSec,
    };
  }
}

const ERRORS = {
  UNAUTHORIZED: { code: -32001, httpStatus: 401, coms_code: "UNAUTHORIZED" },
  PAYLOAD_TOO_LARGE: { code: -32413, httpStatus: 413, coms_code: "TOO_LARGE" },
  NOT_FOUND: { code: -32004, httpStatus: 404, coms_code: "BAD_INPUT" },
  METHOD_NOT_SUPPORTED: { code: -32005, httpStatus: 405, coms_code: "BAD_INPUT" },
  TOO_MANY_REQUESTS: { code: -32029, httpStatus: 429, coms_code: "RATE_LIMITED" },
} as const;

/**
 * An error body in tRPC's wire shape (superjson envelope, one per call of a
 * batch), for answers the transport gives before tRPC runs, so typed clients
 * surface the message and the code like any other error.
 */
export function trpcErrorBody(kind: keyof typeof ERRORS, message: string, url: URL): string {
  const { code, httpStatus, coms_code } = ERRORS[kind];
  const error = { json: { message, code, data: { code: kind, httpStatus, coms_code } } };
  if (url.searchParams.get("batch") !== "1") return JSON.stringify({ error });
  const calls = url.pathname.split("/").pop()?.split(",").length ?? 1;
  return JSON.stringify(Array.from({ length: calls }, () => ({ error })));
}

/**
 * The one request check both HTTP adapters run before tRPC sees a request:
 * the hub bearer token (constant time), then the optional agent credential,
 * which becomes the verified caller of the context.
 */
import type { Caller } from "../contract/router.ts";
import { hashToken, sameDigest } from "../lib/secrets.ts";
import type { HubBackend } from "./backend.ts";

export const AGENT_ID_HEADER = "x-pi-coms-agent-id";
export const AGENT_TOKEN_HEADER = "x-pi-coms-agent-token";

export type AuthResult = { ok: true; caller: Caller | null } | { ok: false; status: 401; message: string };

export class RequestAuth {
  private readonly digest: Buffer;
  private readonly backend: HubBackend;

  constructor(token: string, backend: HubBackend) {
    this.digest = hashToken(token);
    this.backend = backend;
  }

  check(header: (name: string) => string | null | undefined): AuthResult {
    const authorization = header("authorization");
    if (!authorization) {
      return { ok: false, status: 401, message: "missing hub token: send 'Authorization: Bearer <token>'" };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1] || !sameDigest(hashToken(match[1]), this.digest)) {
      return {
        ok: false,
        status: 401,
        message: "wrong hub token (it may have been rotated: re-read the secret)",
      };
    }
    const id = header(AGENT_ID_HEADER);
    const agentToken = header(AGENT_TOKEN_HEADER);
    // A stale agent credential is not a transport error: the procedure answers UNAUTHORIZED and the client re-registers.
    const caller = id && agentToken ? this.backend.authenticate(id, agentToken) : null;
    return { ok: true, caller };
  }
}

const ERRORS = {
  UNAUTHORIZED: { code: -32001, httpStatus: 401, coms_code: "UNAUTHORIZED" },
  PAYLOAD_TOO_LARGE: { code: -32413, httpStatus: 413, coms_code: "TOO_LARGE" },
  NOT_FOUND: { code: -32004, httpStatus: 404, coms_code: "BAD_INPUT" },
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

/**
 * The closed set of pi-coms error codes and how they travel: on the server a
 * ComsError becomes a TRPCError with a matching HTTP-ish code, and the error
 * formatter puts `coms_code` in the error shape so every client (socket or
 * HTTP) can turn it back into the same ComsError.
 */
import { TRPCError } from "@trpc/server";
import type { ErrorCode } from "./schemas.ts";

type TrpcCode = ConstructorParameters<typeof TRPCError>[0]["code"];

const TRPC_CODE: Record<ErrorCode, TrpcCode> = {
  UNKNOWN_PEER: "NOT_FOUND",
  PEER_GONE: "SERVICE_UNAVAILABLE",
  HOP_LIMIT: "UNPROCESSABLE_CONTENT",
  TOO_LARGE: "PAYLOAD_TOO_LARGE",
  EXPIRED: "NOT_FOUND",
  TIMEOUT: "TIMEOUT",
  CANCELLED: "CLIENT_CLOSED_REQUEST",
  UNAUTHORIZED: "UNAUTHORIZED",
  BAD_INPUT: "BAD_REQUEST",
  SCHEMA_MISMATCH: "UNPROCESSABLE_CONTENT",
  RATE_LIMITED: "TOO_MANY_REQUESTS",
  QUEUE_FULL: "TOO_MANY_REQUESTS",
  // The hub cannot store right now (its Redis is down, or it is failing over). Not a 5xx of the
  // "unreachable" kind (502+), which clients answer by hunting for the hub: this hub answered, and
  // the caller should hear at once that nothing was accepted.
  UNAVAILABLE: "INTERNAL_SERVER_ERROR",
};

/**
 * Both transports refuse a message to oneself (BAD_INPUT, this text): an
 * agent waiting for its own prompt would only interrupt itself.
 */
export const SELF_MESSAGE = "an agent cannot message itself";

export class ComsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ComsError";
    this.code = code;
  }
}

/** Throw this from a procedure: tRPC carries it, the formatter labels it. */
export function comsError(code: ErrorCode, message: string): TRPCError {
  return new TRPCError({ code: TRPC_CODE[code], message, cause: new ComsError(code, message) });
}

const FALLBACK: Partial<Record<TrpcCode, ErrorCode>> = {
  BAD_REQUEST: "BAD_INPUT",
  PARSE_ERROR: "BAD_INPUT",
  NOT_FOUND: "BAD_INPUT",
  METHOD_NOT_SUPPORTED: "BAD_INPUT",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "UNAUTHORIZED",
  PAYLOAD_TOO_LARGE: "TOO_LARGE",
  TIMEOUT: "TIMEOUT",
  CLIENT_CLOSED_REQUEST: "CANCELLED",
  TOO_MANY_REQUESTS: "RATE_LIMITED",
};

/** The pi-coms code for an error raised inside a procedure (used by the error formatter). */
export function comsCodeOf(error: TRPCError): ErrorCode | null {
  if (error.cause instanceof ComsError) return error.cause.code;
  return FALLBACK[error.code] ?? null;
}

/**
 * Turn whatever a client call threw (TRPCClientError, AbortError, ComsError)
 * into a ComsError. Non-coms failures keep their message under PEER_GONE,
 * which is what they mean to a caller: the other side could not be reached.
 */
export function toComsError(error: unknown): ComsError {
  if (error instanceof ComsError) return error;
  const err = error as {
    name?: string;
    message?: string;
    cause?: unknown;
    data?: { coms_code?: unknown };
  } | null;
  if (err?.cause instanceof ComsError) return err.cause;
  const code = err?.data?.coms_code;
  if (typeof code === "string" && isErrorCode(code))
    return new ComsError(code, err?.message ?? code, { cause: error });
  if (err?.name === "AbortError") return new ComsError("CANCELLED", "cancelled", { cause: error });
  return new ComsError("PEER_GONE", err?.message ?? String(error), { cause: error });
}

const CODES = new Set<string>(Object.keys(TRPC_CODE));
export function isErrorCode(value: string): value is ErrorCode {
  return CODES.has(value);
}

/**
 * The CLI's exit codes. Scripts branch on these, so they are part of the
 * public interface: change them only together with the README table.
 */
import type { ErrorCode } from "../contract/schemas.ts";

export const EXIT = {
  OK: 0,
  /** Anything not listed below: hop limit, too large, expired, rate limited, a reply not matching the schema. */
  OTHER: 1,
  USAGE: 2,
  UNKNOWN_PEER: 3,
  TIMEOUT: 4,
  AUTH: 5,
  /** The peer left, its socket refuses, no hub answers, or the peer failed to produce an answer. */
  UNREACHABLE: 6,
  /** Interrupted (Ctrl-C / SIGTERM), as shells expect for SIGINT. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  UNKNOWN_PEER: EXIT.UNKNOWN_PEER,
  TIMEOUT: EXIT.TIMEOUT,
  UNAUTHORIZED: EXIT.AUTH,
  PEER_GONE: EXIT.UNREACHABLE,
  CANCELLED: EXIT.INTERRUPTED,
};

/** For a call that failed: BAD_INPUT is the user's argument, hence a usage error. */
export function exitCodeForError(code: ErrorCode): ExitCode {
  if (code === "BAD_INPUT") return EXIT.USAGE;
  return BY_CODE[code] ?? EXIT.OTHER;
}

/** For a message whose outcome is an error: the peer's own BAD_INPUT is not the CLI user's mistake. */
export function exitCodeForOutcome(code: ErrorCode): ExitCode {
  return BY_CODE[code] ?? EXIT.OTHER;
}

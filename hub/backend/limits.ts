/** What a hub allows: every bound the backend enforces, with the defaults the CLI starts from. */

export interface HubLimits {
  maxHops: number;
  messageTtlMs: number;
  staleAfterMs: number;
  offlineAfterMs: number;
  maxMessageBytes: number;
  maxAgents: number;
  /** Sustained new messages per second per sending agent, burst twice that; 0 or absent = unlimited. */
  maxSendsPerSec?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
export const DEFAULT_MAX_AGENTS = 4096;
/** How long a reply the sender has already taken stays readable by get(). */
export const TAKEN_RETENTION_MS = 60_000;

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
  /** Unanswered messages one recipient may hold; a send past it is refused QUEUE_FULL. 0 = no limit. */
  maxQueue?: number;
  /**
   * Bytes of unanswered messages the whole hub may hold (prompt + response_schema,
   * as --max-message-bytes counts them); a send past it is refused QUEUE_FULL. 0 = no limit.
   */
  maxQueuedBytes?: number;
  /**
   * Each agent's share of maxQueuedBytes: bytes of its unanswered messages and
   * untaken replies as a sender, and of its queue as a recipient; a send past
   * either is refused QUEUE_FULL. Default: an eighth of maxQueuedBytes. 0 = no share.
   */
  maxQueuedBytesPerAgent?: number;
  /** Inbox streams open at once per agent; a new one past it closes that agent's oldest. 0 = no limit. */
  maxStreamsPerAgent?: number;
  /**
   * An agent offline this long, or registered this long without ever opening
   * its inbox, is removed (what was queued to it ends PEER_GONE). 0 = never.
   */
  reapAfterMs?: number;
  /**
   * An agent whose last inbox stream closed and that opens none again within
   * this long is gone: what it was handed and has not answered ends PEER_GONE.
   * 0 = only presence (stale with no stream, offline) decides.
   */
  streamGraceMs?: number;
  /** Agents registered but not yet connected (no inbox stream opened), at most. 0 = no limit. */
  maxPendingRegistrations?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
export const DEFAULT_MAX_AGENTS = 4096;
/** How long a reply the sender has already taken stays readable by get(). */
export const TAKEN_RETENTION_MS = 60_000;
export const DEFAULT_MAX_QUEUE = 1000;
export const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024 * 1024;
/** An agent's default share of --max-queued-bytes: so it takes at least this many agents to fill the hub. */
export const DEFAULT_QUEUED_SHARE_DIVISOR = 8;
export const DEFAULT_MAX_STREAMS_PER_AGENT = 8;
export const DEFAULT_REAP_AFTER_MS = 300_000;
export const DEFAULT_MAX_PENDING_REGISTRATIONS = 256;
/** Longer than a client takes to reconnect after a cut (at once, or after at most 2 s of backoff). */
export const DEFAULT_STREAM_GRACE_MS = 3000;

/** The limits with every optional one filled in from its default. */
export function resolveLimits(limits: HubLimits): Required<HubLimits> {
  const maxQueuedBytes = limits.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  return {
    ...limits,
    maxSendsPerSec: limits.maxSendsPerSec ?? 0,
    maxQueue: limits.maxQueue ?? DEFAULT_MAX_QUEUE,
    maxQueuedBytes,
    maxQueuedBytesPerAgent:
      limits.maxQueuedBytesPerAgent ?? Math.floor(maxQueuedBytes / DEFAULT_QUEUED_SHARE_DIVISOR),
    maxStreamsPerAgent: limits.maxStreamsPerAgent ?? DEFAULT_MAX_STREAMS_PER_AGENT,
    reapAfterMs: limits.reapAfterMs ?? DEFAULT_REAP_AFTER_MS,
    maxPendingRegistrations: limits.maxPendingRegistrations ?? DEFAULT_MAX_PENDING_REGISTRATIONS,
    streamGraceMs: limits.streamGraceMs ?? DEFAULT_STREAM_GRACE_MS,
  };
}

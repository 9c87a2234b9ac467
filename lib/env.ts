/** Reading pi-coms settings from the environment, with defaults and clear errors. */
import { homedir } from "node:os";
import { join } from "node:path";

/** A non-negative integer from the environment; a malformed value is an error, not a silent default. */
export function envInt(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A non-negative integer from the environment, or undefined when it is not set. */
export function envOptionalInt(name: string, env: NodeJS.ProcessEnv = process.env): number | undefined {
  return envString(name, env) === undefined ? undefined : envInt(name, 0, env);
}

export function envString(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === "" ? undefined : raw;
}

/** Root of the P2P registry: $PI_COMS_DIR or ~/.pi/coms. */
export function comsDir(env: NodeJS.ProcessEnv = process.env): string {
  return envString("PI_COMS_DIR", env) ?? join(homedir(), ".pi", "coms");
}

/** Root of the hub's per-project files: $PI_COMS_NET_DIR or ~/.pi/coms-net. */
export function comsNetDir(env: NodeJS.ProcessEnv = process.env): string {
  return envString("PI_COMS_NET_DIR", env) ?? join(homedir(), ".pi", "coms-net");
}

export interface P2PSettings {
  timeoutMs: number;
  maxHops: number;
  pingIntervalMs: number;
  /** Settled inbound messages kept for late `get` calls: at most this many, and this many bytes. */
  keepSettled: number;
  keepSettledBytes: number;
  /** Final outcomes of this node's own sends kept for late `get`/`await`: count and bytes. */
  keepOutcomes: number;
  keepOutcomesBytes: number;
}

export function p2pSettings(env: NodeJS.ProcessEnv = process.env): P2PSettings {
  return {
    timeoutMs: envInt("PI_COMS_TIMEOUT_MS", 1_800_000, env),
    maxHops: envInt("PI_COMS_MAX_HOPS", 5, env),
    pingIntervalMs: envInt("PI_COMS_PING_INTERVAL_MS", 10_000, env),
    keepSettled: envInt("PI_COMS_KEEP_SETTLED", 10_000, env),
    keepSettledBytes: envInt("PI_COMS_KEEP_SETTLED_BYTES", 32 * 1024 * 1024, env),
    keepOutcomes: envInt("PI_COMS_KEEP_OUTCOMES", 10_000, env),
    keepOutcomesBytes: envInt("PI_COMS_KEEP_OUTCOMES_BYTES", 32 * 1024 * 1024, env),
  };
}

export interface HubSettings {
  host: string;
  port: number;
  token: string | undefined;
  serverUrl: string | undefined;
  /** PEM certificate and key files: the hub serves HTTPS when both are set. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  maxHops: number;
  messageTtlMs: number;
  heartbeatMs: number;
  staleAfterMs: number;
  offlineAfterMs: number;
  /** Sustained sends per second allowed per agent (burst twice that); 0 = unlimited. */
  maxSendsPerSec: number;
  /** Show prompt and reply previews on the dashboard (PI_COMS_NET_DASHBOARD_CONTENT=on|off). */
  dashboardContent: boolean;
  /** Bytes an inbox stream's reader may fall behind before the hub cuts the stream (it resumes by id). */
  maxStreamBufferBytes: number;
  /** Unanswered messages one recipient may hold before sends to it are refused QUEUE_FULL; 0 = no limit. */
  maxQueue: number;
  /** Bytes of unanswered messages the whole hub may hold before sends are refused QUEUE_FULL; 0 = no limit. */
  maxQueuedBytes: number;
  /** Each agent's share of maxQueuedBytes, as a sender and as a recipient; undefined = the hub's default (an eighth); 0 = none. */
  maxQueuedBytesPerAgent: number | undefined;
  /** Inbox streams per agent; a new one past it closes that agent's oldest; 0 = no limit. */
  maxStreamsPerAgent: number;
  /** Remove agents offline this long, or registered this long without opening their inbox; 0 = never. */
  reapAfterMs: number;
  /** Registered agents that have not opened their inbox yet, at most; 0 = no limit. */
  maxPendingRegistrations: number;
  /** An agent whose inbox stream closed and that opens none again within this long is gone (PEER_GONE); 0 = never. */
  streamGraceMs: number;
  /** SQLite store: "normal" (no fsync per commit) or "full" (an fsync per commit). */
  sqliteSync: SqliteSync;
}

/** How the SQLite store syncs its commits (PRAGMA synchronous); docs/performance.md says what each risks. */
export type SqliteSync = "normal" | "full";

export function parseSqliteSync(what: string, raw: string): SqliteSync {
  if (raw === "normal" || raw === "full") return raw;
  throw new Error(`${what} must be normal or full, got ${JSON.stringify(raw)}`);
}

/** "on" or "off" (the dashboard's content switch); anything else is an error. */
export function parseOnOff(what: string, raw: string): boolean {
  if (raw === "on") return true;
  if (raw === "off") return false;
  throw new Error(`${what} must be on or off, got ${JSON.stringify(raw)}`);
}

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  return {
    host: envString("PI_COMS_NET_HOST", env) ?? "127.0.0.1",
    port: envInt("PI_COMS_NET_PORT", 0, env),
    token: envString("PI_COMS_NET_AUTH_TOKEN", env),
    serverUrl: envString("PI_COMS_NET_SERVER_URL", env),
    tlsCert: envString("PI_COMS_NET_TLS_CERT", env),
    tlsKey: envString("PI_COMS_NET_TLS_KEY", env),
    maxHops: envInt("PI_COMS_NET_MAX_HOPS", 5, env),
    messageTtlMs: envInt("PI_COMS_NET_MESSAGE_TTL_MS", 1_800_000, env),
    heartbeatMs: envInt("PI_COMS_NET_HEARTBEAT_MS", 10_000, env),
    staleAfterMs: envInt("PI_COMS_NET_STALE_AFTER_MS", 30_000, env),
    offlineAfterMs: envInt("PI_COMS_NET_OFFLINE_AFTER_MS", 60_000, env),
    maxSendsPerSec: envInt("PI_COMS_NET_MAX_SENDS_PER_SEC", 1000, env),
    dashboardContent: parseOnOff(
      "PI_COMS_NET_DASHBOARD_CONTENT",
      envString("PI_COMS_NET_DASHBOARD_CONTENT", env) ?? "on",
    ),
    maxStreamBufferBytes: envInt("PI_COMS_NET_MAX_STREAM_BUFFER_BYTES", 256 * 1024, env),
    maxQueue: envInt("PI_COMS_NET_MAX_QUEUE", 1000, env),
    maxQueuedBytes: envInt("PI_COMS_NET_MAX_QUEUED_BYTES", 1024 * 1024 * 1024, env),
    maxQueuedBytesPerAgent: envOptionalInt("PI_COMS_NET_MAX_QUEUED_BYTES_PER_AGENT", env),
    maxStreamsPerAgent: envInt("PI_COMS_NET_MAX_STREAMS_PER_AGENT", 8, env),
    reapAfterMs: envInt("PI_COMS_NET_REAP_AFTER_MS", 300_000, env),
    maxPendingRegistrations: envInt("PI_COMS_NET_MAX_PENDING_REGISTRATIONS", 256, env),
    streamGraceMs: envInt("PI_COMS_NET_STREAM_GRACE_MS", 3000, env),
    sqliteSync: parseSqliteSync(
      "PI_COMS_NET_SQLITE_SYNC",
      envString("PI_COMS_NET_SQLITE_SYNC", env) ?? "normal",
    ),
  };
}

export interface McpSettings {
  /** Longest one blocking MCP tool call (await, receive) waits before answering "still waiting, call again". */
  maxWaitMs: number;
  /** Progress notifications this often during a blocking call whose request asked for progress. */
  progressMs: number;
  /** The hub's /mcp: open sessions at most, and how long an idle one (no request, no stream) lives. */
  maxSessions: number;
  idleMs: number;
}

export function mcpSettings(env: NodeJS.ProcessEnv = process.env): McpSettings {
  return {
    // A wait of 0 would answer "call again" before looking; progress faster than 10/s is noise.
    maxWaitMs: Math.max(1, envInt("PI_COMS_MCP_MAX_WAIT_MS", 45_000, env)),
    progressMs: Math.max(100, envInt("PI_COMS_MCP_PROGRESS_MS", 10_000, env)),
    maxSessions: envInt("PI_COMS_NET_MAX_MCP_SESSIONS", 256, env),
    idleMs: envInt("PI_COMS_NET_MCP_IDLE_MS", 1_800_000, env),
  };
}

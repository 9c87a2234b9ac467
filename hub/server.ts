/**
 * Start a hub in this process: settle the token, open the store, build the
 * backend and serve it over HTTP with whichever adapter fits the runtime.
 * The CLI is a thin wrapper around this; tests use it directly too.
 */
import { readFileSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { hubSettings, mcpSettings, type SqliteSync } from "../lib/env.ts";
import { readJson, writeJsonAtomic } from "../lib/private-fs.ts";
import { DEFAULT_MAX_AGENTS, DEFAULT_MAX_MESSAGE_BYTES, HubBackend } from "./backend/backend.ts";
import { DashboardRoutes } from "./http/dashboard-routes.ts";
import { DashboardSessions } from "./http/dashboard-sessions.ts";
import { McpRoute } from "./http/mcp-route.ts";
import { ObservedAuth } from "./http/observed-auth.ts";
import type { ServedHub } from "./http/routes.ts";
import { AdminFeed } from "./observe/admin-feed.ts";
import { HubMetrics } from "./observe/metrics.ts";
import { timedStore } from "./observe/timed-store.ts";
import { type HubPaths, hubPaths } from "./paths.ts";
import { resolveHubToken } from "./secret.ts";
import { isBun } from "./store/sqlite-driver.ts";
import { type HubStore, openStore, type StoreKind } from "./store/store.ts";

export interface HubServerOptions {
  project: string;
  host?: string;
  port?: number;
  /** An explicit token (else PI_COMS_NET_AUTH_TOKEN, else the stored or a generated one). */
  token?: string;
  store?: StoreKind;
  /** SQLite store: an fsync per commit ("full") or none ("normal"); else PI_COMS_NET_SQLITE_SYNC, default normal. */
  sqliteSync?: SqliteSync;
  /** An already opened store (the Redis store of a clustered hub, hub/cluster/); `store` is then ignored. */
  storeInstance?: HubStore;
  /** PEM certificate and key files for HTTPS (else PI_COMS_NET_TLS_CERT / PI_COMS_NET_TLS_KEY); both or neither. */
  tlsCert?: string;
  tlsKey?: string;
  maxMessageBytes?: number;
  maxAgents?: number;
  /** Sustained sends per second per agent (else PI_COMS_NET_MAX_SENDS_PER_SEC, default 1000); 0 = off. */
  maxSendsPerSec?: number;
  /** Prompt/reply previews on the dashboard (else PI_COMS_NET_DASHBOARD_CONTENT, default on). */
  dashboardContent?: boolean;
  /** Cut an SSE stream whose reader is this many bytes behind (else PI_COMS_NET_MAX_STREAM_BUFFER_BYTES, default 256 KiB). */
  maxStreamBufferBytes?: number;
  /** Ping quiet inbox streams this often (default 15 s); a clustered hub pings faster, so clients leave a hung one within its lease time. */
  pingMs?: number;
  /** Unanswered messages per recipient before QUEUE_FULL (else PI_COMS_NET_MAX_QUEUE, default 1000); 0 = no limit. */
  maxQueue?: number;
  /** Bytes of unanswered messages the whole hub holds before QUEUE_FULL (else PI_COMS_NET_MAX_QUEUED_BYTES, default 1 GiB); 0 = no limit. */
  maxQueuedBytes?: number;
  /** Each agent's share of it, as a sender and as a recipient (else PI_COMS_NET_MAX_QUEUED_BYTES_PER_AGENT, default an eighth); 0 = none. */
  maxQueuedBytesPerAgent?: number;
  /** Inbox streams per agent; past it the oldest closes (else PI_COMS_NET_MAX_STREAMS_PER_AGENT, default 8). */
  maxStreamsPerAgent?: number;
  /** Reap agents offline, or never connected, this long (else PI_COMS_NET_REAP_AFTER_MS, default 300000); 0 = never. */
  reapAfterMs?: number;
  /** Registered-but-unconnected agents at most (else PI_COMS_NET_MAX_PENDING_REGISTRATIONS, default 256). */
  maxPendingRegistrations?: number;
  /** What a holder's closed stream has to come back in before what it held ends PEER_GONE (else PI_COMS_NET_STREAM_GRACE_MS, default 3000); 0 = never. */
  streamGraceMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Publish url, pid and start time in the project's discovery file (the CLI does). */
  discovery?: boolean;
}

export interface HubServer {
  url: string;
  /** The address it is bound to. */
  host: string;
  token: string;
  project: string;
  store: StoreKind;
  /** The SQLite store's sync, as the database reports it. */
  sqliteSync: SqliteSync | undefined;
  /** Serving HTTPS (the url is https://). */
  tls: boolean;
  paths: HubPaths;
  backend: HubBackend;
  metrics: HubMetrics;
  /** Graceful stop: end the streams, flush the store, stop listening, remove the discovery file. */
  close(): Promise<void>;
}

export interface DiscoveryRecord {
  url: string;
  pid: number;
  /** When the hub process started (ms since the epoch), to tell it from a later process with the same pid. */
  started_at: number;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The address a local client uses to reach a hub bound to `host`. */
export function connectHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** The PEM certificate and key for HTTPS, read up front so that a bad path fails before anything starts. */
export function readTlsFiles(
  cert: string | undefined,
  key: string | undefined,
): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new Error("TLS needs both a certificate and a key (--tls-cert and --tls-key)");
  }
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`);
    }
  };
  return { cert: read("certificate", cert), key: read("key", key) };
}

function optionalLimit<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

export function processStartedAt(): number {
  return Math.round(performance.timeOrigin);
}

/**
 * Where and how a hub listens, from its options over the environment. A hub
 * reachable from other machines needs a token someone chose, so it refuses a
 * non-loopback host without one; TLS files are read now so a bad path fails
 * before anything starts.
 */
export function listenPlan(opts: {
  project: string;
  env?: NodeJS.ProcessEnv;
  host?: string;
  port?: number;
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
}) {
  const env = opts.env ?? process.env;
  const settings = hubSettings(env);
  const host = opts.host ?? settings.host;
  const port = opts.port ?? settings.port;
  const explicitToken = opts.token ?? settings.token;
  if (!isLoopback(host) && explicitToken === undefined) {
    throw new Error(
      `refusing to listen on ${host} without an explicit token: other machines could reach the hub, ` +
        "so set PI_COMS_NET_AUTH_TOKEN or pass --auth-token (and share it with the clients)",
    );
  }
  const tls = readTlsFiles(opts.tlsCert ?? settings.tlsCert, opts.tlsKey ?? settings.tlsKey);
  return { env, settings, host, port, explicitToken, tls, paths: hubPaths(opts.project, env) };
}

export async function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const { settings, host, port, explicitToken, tls, paths } = listenPlan(opts);
  const kind = opts.storeInstance?.kind ?? opts.store ?? "sqlite";
  // The store first: its lock keeps a second hub of the project from touching the secret of the first.
  let flushed = (_ms: number) => {};
  const store = timedStore(
    opts.storeInstance ??
      (await openStore(kind, paths.dir, { sync: opts.sqliteSync ?? settings.sqliteSync })),
    (ms) => flushed(ms),
  );
  let token: string;
  try {
    token = resolveHubToken(paths.secret, explicitToken);
  } catch (error) {
    store.close();
    throw error;
  }
  const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const backend = new HubBackend(store, opts.project, {
    maxHops: settings.maxHops,
    messageTtlMs: settings.messageTtlMs,
    staleAfterMs: settings.staleAfterMs,
    offlineAfterMs: settings.offlineAfterMs,
    maxMessageBytes,
    maxAgents: opts.maxAgents ?? DEFAULT_MAX_AGENTS,
    maxSendsPerSec: opts.maxSendsPerSec ?? settings.maxSendsPerSec,
    maxQueue: opts.maxQueue ?? settings.maxQueue,
    maxQueuedBytes: opts.maxQueuedBytes ?? settings.maxQueuedBytes,
    ...optionalLimit(
      "maxQueuedBytesPerAgent",
      opts.maxQueuedBytesPerAgent ?? settings.maxQueuedBytesPerAgent,
    ),
    maxStreamsPerAgent: opts.maxStreamsPerAgent ?? settings.maxStreamsPerAgent,
    reapAfterMs: opts.reapAfterMs ?? settings.reapAfterMs,
    maxPendingRegistrations: opts.maxPendingRegistrations ?? settings.maxPendingRegistrations,
    streamGraceMs: opts.streamGraceMs ?? settings.streamGraceMs,
  });
  const feed = new AdminFeed(backend, { content: opts.dashboardContent ?? settings.dashboardContent });
  const metrics = new HubMetrics(backend, feed);
  flushed = (ms) => metrics.storeFlushed(ms);
  const auth = new ObservedAuth(token, backend);
  auth.onFailure = (reason) => metrics.authFailure(reason);
  const dashboard = new DashboardRoutes({ auth, sessions: new DashboardSessions(), metrics });
  // JSON escaping can double a text; the backend enforces the real limit with a clear TOO_LARGE.
  const maxBodyBytes = 2 * maxMessageBytes + 64 * 1024;
  const mcpLimits = mcpSettings(opts.env ?? process.env);
  const mcp = new McpRoute({
    backend,
    auth,
    maxBodyBytes,
    heartbeatMs: settings.heartbeatMs,
    replyTimeoutMs: settings.messageTtlMs,
    maxWaitMs: mcpLimits.maxWaitMs,
    progressMs: mcpLimits.progressMs,
    maxSessions: mcpLimits.maxSessions,
    idleMs: mcpLimits.idleMs,
  });
  metrics.countMcpSessions(() => mcp.size);
  const serveOptions = {
    host,
    port,
    backend,
    auth,
    dashboard,
    mcp,
    admin: feed,
    maxBodyBytes,
    // Checked before each write, so an event of any size reaches a reader that keeps up.
    maxStreamBufferBytes: opts.maxStreamBufferBytes ?? settings.maxStreamBufferBytes,
    ...(opts.pingMs ? { pingMs: opts.pingMs } : {}),
    ...(tls ? { tls } : {}),
  };
  let served: ServedHub;
  try {
    if (isBun()) served = await (await import("./http/bun.ts")).serveBun(serveOptions);
    else served = await (await import("./http/node.ts")).serveNode(serveOptions);
  } catch (error) {
    await mcp.closeAll();
    feed.close();
    metrics.close();
    await backend.close();
    throw error;
  }
  const url = `${tls ? "https" : "http"}://${connectHost(host)}:${served.port}`;
  const record: DiscoveryRecord = { url, pid: process.pid, started_at: processStartedAt() };
  if (opts.discovery) writeJsonAtomic(paths.discovery, record);
  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    token,
    project: opts.project,
    store: kind,
    sqliteSync: store.sync,
    tls: tls !== undefined,
    paths,
    backend,
    metrics,
    close: () => {
      closing ??= (async () => {
        // MCP agents leave first, while the backend can still settle what they held.
        await mcp.closeAll();
        feed.close();
        metrics.close();
        await backend.close();
        await served.close();
        if (opts.discovery) {
          const current = readJson(paths.discovery) as DiscoveryRecord | undefined;
          if (current?.pid === process.pid) rmSync(paths.discovery, { force: true });
        }
      })();
      return closing;
    },
  };
}

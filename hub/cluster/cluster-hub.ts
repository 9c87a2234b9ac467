/**
 * A hub on a shared Redis store: any number of these processes serve one
 * project. Exactly one of them, the lease holder, runs the HubBackend (on
 * an internal listener, as an ordinary hub server on the Redis store); every
 * hub's public listener forwards each request and stream to the holder. When
 * the holder dies its lease expires, another hub takes it, loads the state
 * from Redis and serves; clients reconnect (to any hub) and resume their
 * streams by event id, which stay valid because the epoch and sequence live
 * in Redis. One backend enforces queue caps and rate limits for all hubs.
 */
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { hostname } from "node:os";
import { readJson, writeJsonAtomic } from "../../lib/private-fs.ts";
import { listenNode } from "../http/node.ts";
import { resolveHubToken } from "../secret.ts";
import {
  connectHost,
  type DiscoveryRecord,
  type HubServer,
  type HubServerOptions,
  listenPlan,
  processStartedAt,
  startHubServer,
} from "../server.ts";
import { openRedisStore } from "../store/redis.ts";
import { redisKeys } from "../store/redis-keys.ts";
import { Lease } from "./lease.ts";
import { proxyHandler } from "./proxy.ts";
import { openRedis, redactRedisUrl } from "./redis-connection.ts";

export const DEFAULT_LEASE_MS = 5_000;

/**
 * The holder pings quiet streams every half lease, and so tells clients to
 * leave a stream silent for 1.25 leases (hub/http/sse-writer.ts): a client
 * relayed to a hung holder, or on its public port, moves to another hub about
 * when the lease has passed to a live one.
 */
export function clusterPingMs(leaseMs: number): number {
  return Math.min(15_000, Math.max(250, Math.floor(leaseMs / 2)));
}

export interface ClusterHubOptions extends Omit<HubServerOptions, "store" | "storeInstance"> {
  redisUrl: string;
  /** How long a dead holder keeps the lease (failover time); default 5000 ms. */
  leaseMs?: number;
  /** Address the internal (backend) listener binds; default the public host. */
  clusterHost?: string;
  /** Its port; default 0 (any). */
  clusterPort?: number;
  /** Name or address other hubs use to reach this one; default the cluster host (this machine's name if a wildcard). */
  advertiseHost?: string;
  log?: (line: string) => void;
}

export type RunningHub = Pick<HubServer, "url" | "host" | "token" | "project" | "tls" | "paths" | "close"> & {
  store: "redis";
  /** The Redis URL with its password masked. */
  redis: string;
  /** This process runs the backend right now. */
  isHolder(): boolean;
};

const HOLDER_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`;

/** An IPv6 address as a URL host needs brackets. */
function bracketed(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Whether something accepts TCP connections at the URL's host and port. */
function reachable(url: string, timeoutMs = 1_000): Promise<boolean> {
  const { hostname, port, protocol } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({
      host: hostname.replace(/^\[|\]$/g, ""),
      port: Number(port || (protocol === "https:" ? 443 : 80)),
    });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export async function startClusterHub(opts: ClusterHubOptions): Promise<RunningHub> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`pi-coms-hub: ${line}\n`));
  const { env, host, port, explicitToken, tls, paths } = listenPlan(opts);
  const token = resolveHubToken(paths.secret, explicitToken);
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const clusterHost = opts.clusterHost ?? host;
  const advertiseHost =
    opts.advertiseHost ??
    (clusterHost === "0.0.0.0" || clusterHost === "::" ? hostname() : connectHost(clusterHost));
  const keys = redisKeys(opts.project);
  const redis = openRedis(opts.redisUrl, log);

  let holderUrl: string | undefined;
  /** The last holder URL that accepted a connection. */
  let verified: string | undefined;
  let internal: HubServer | undefined;
  let lease: Lease | undefined;
  let transition: Promise<void> = Promise.resolve();
  let closed = false;

  const stepDown = (why: string) => {
    const current = lease;
    if (!current) return transition;
    lease = undefined;
    holderUrl = undefined;
    log(`stepping down as the project's active hub: ${why}`);
    transition = transition.then(async () => {
      const server = internal;
      internal = undefined;
      await server?.close().catch(() => {});
      await current.release();
    });
    return transition;
  };

  const becomeHolder = async (won: Lease) => {
    lease = won;
    won.onLost = (why) => void stepDown(why);
    const store = await openRedisStore({
      redis,
      keys,
      leaseToken: won.token,
      onFailure: (error) => void stepDown(`a write to Redis failed (${error.message})`),
    });
    if (lease !== won) return;
    const server = await startHubServer({
      ...opts,
      host: clusterHost,
      port: opts.clusterPort ?? 0,
      token,
      storeInstance: store,
      discovery: false,
      pingMs: clusterPingMs(leaseMs),
      env,
    });
    if (lease !== won) return void (await server.close());
    internal = server;
    const advertised = `${server.tls ? "https" : "http"}://${bracketed(advertiseHost)}:${new URL(server.url).port}`;
    await redis.eval(HOLDER_SCRIPT, {
      keys: [keys.lease, keys.holder],
      arguments: [won.token, JSON.stringify({ lease: won.token, url: advertised })],
    });
    // This process forwards its own clients to its backend at the address it bound (loopback for a wildcard).
    holderUrl = server.url;
    log(`active hub of project ${opts.project} (backend on ${advertised})`);
  };

  const tick = async () => {
    if (closed || lease) return;
    // A backend that is still closing may hold the cluster port a new one would bind.
    await transition;
    if (!redis.isReady) {
      holderUrl = undefined;
      return;
    }
    try {
      const candidate = new Lease(redis, keys.lease, leaseMs);
      if (await candidate.acquire()) {
        if (closed) return void (await candidate.release());
        if (relayedTo !== undefined) proxy.cutFrom(relayedTo);
        relayedTo = undefined;
        await becomeHolder(candidate).catch((error: Error) => stepDown(`cannot start: ${error.message}`));
        return;
      }
      const [current, holder] = await redis.mGet([keys.lease, keys.holder]);
      const parsed = holder ? (JSON.parse(holder) as { lease: string; url: string }) : undefined;
      const url = parsed && parsed.lease === current ? parsed.url : undefined;
      // Redis says the holder we relayed to is no longer it (a hung one keeps its streams open, silent): cut them.
      if (relayedTo !== undefined && relayedTo !== url) proxy.cutFrom(relayedTo);
      relayedTo = url;
      // A holder killed -9 keeps its lease until the TTL runs out: forward only to one that answers.
      if (url !== undefined && url !== verified && (await reachable(url))) verified = url;
      holderUrl = url !== undefined && url === verified ? url : undefined;
    } catch {
      holderUrl = undefined;
    }
  };

  /** The holder Redis last named (not our own backend), whose relayed requests are cut once it is not. */
  let relayedTo: string | undefined;
  let ticking = false;
  const poll = setInterval(
    () => {
      if (ticking) return;
      ticking = true;
      void tick().finally(() => {
        ticking = false;
      });
    },
    Math.max(100, Math.floor(leaseMs / 10)),
  );

  const proxy = proxyHandler({
    current: () => holderUrl,
    suspect: (url) => {
      if (lease) return;
      if (verified === url) verified = undefined;
      if (holderUrl === url) holderUrl = undefined;
    },
    storeReachable: () => redis.isReady,
    holdMs: Math.min(leaseMs, 3_000),
  });
  const front = await listenNode({ host, port, ...(tls ? { tls } : {}) }, proxy);
  // Clients connecting right after start should find a hub serving; with Redis down, start anyway.
  const ready = Date.now() + 2 * leaseMs;
  while (holderUrl === undefined && Date.now() < ready && (redis.isReady || Date.now() < ready - leaseMs)) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const url = `${tls ? "https" : "http"}://${connectHost(host)}:${front.port}`;
  if (opts.discovery) {
    const record: DiscoveryRecord = { url, pid: process.pid, started_at: processStartedAt() };
    writeJsonAtomic(paths.discovery, record);
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    token,
    project: opts.project,
    store: "redis",
    redis: redactRedisUrl(opts.redisUrl),
    tls: tls !== undefined,
    paths,
    isHolder: () => internal !== undefined,
    close: () => {
      closing ??= (async () => {
        closed = true;
        clearInterval(poll);
        await stepDown("shutting down");
        await transition;
        await front.close();
        redis.destroy();
        if (opts.discovery) {
          const current = readJson(paths.discovery) as DiscoveryRecord | undefined;
          if (current?.pid === process.pid) rmSync(paths.discovery, { force: true });
        }
      })();
      return closing;
    },
  };
}

/**
 * Hubs sharing one real redis-server, as the cluster and failover tests run
 * them: one redis-server for the test file (started before its tests, removed
 * after), a short lease and short heartbeats, so a client notices a dead hub
 * within one heartbeat and the cluster fails over within seconds.
 */
import { after, before } from "node:test";
import { type HubProcess, HubWorld } from "./hub-harness.ts";
import { type RedisServer, startRedis } from "./redis-server.ts";

export const CLUSTER_LEASE = ["--lease-ms", "2000"];

export interface RedisCluster {
  /** The file's shared redis-server (started in `before`). */
  redis(): RedisServer;
  world(): HubWorld;
  /** A hub on `store` (default: the shared redis-server) with the short lease, then `args`. */
  hubOn(w: HubWorld, project: string, opts?: { store?: string; args?: string[] }): Promise<HubProcess>;
}

export function redisCluster(token: string): RedisCluster {
  let shared: RedisServer | undefined;
  before(async () => {
    shared = await startRedis();
  });
  after(async () => {
    await shared?.dispose();
  });
  const redis = (): RedisServer => {
    if (!shared) throw new Error("the shared redis-server starts in before()");
    return shared;
  };
  return {
    redis,
    world: () => new HubWorld({ PI_COMS_NET_AUTH_TOKEN: token, PI_COMS_NET_HEARTBEAT_MS: "300" }),
    hubOn: (w, project, { store = redis().url, args = [] } = {}) =>
      w.startHub({ project, args: ["--store", store, ...CLUSTER_LEASE, ...args] }),
  };
}

/** The clustered hub's settings from the environment (flags override them in hub/cli.ts). */
import { envInt, envString } from "../../lib/env.ts";
import { DEFAULT_LEASE_MS } from "./cluster-hub.ts";

export interface ClusterSettings {
  /** PI_COMS_NET_REDIS_URL: use the Redis store when no --store is given. */
  redisUrl: string | undefined;
  leaseMs: number;
  clusterHost: string | undefined;
  clusterPort: number;
  advertiseHost: string | undefined;
}

export function clusterSettings(env: NodeJS.ProcessEnv = process.env): ClusterSettings {
  return {
    redisUrl: envString("PI_COMS_NET_REDIS_URL", env),
    leaseMs: envInt("PI_COMS_NET_LEASE_MS", DEFAULT_LEASE_MS, env),
    clusterHost: envString("PI_COMS_NET_CLUSTER_HOST", env),
    clusterPort: envInt("PI_COMS_NET_CLUSTER_PORT", 0, env),
    advertiseHost: envString("PI_COMS_NET_ADVERTISE_HOST", env),
  };
}

/** Joining for one CLI command: P2P by default, the hub with --net. */
import type { ComsClient } from "../contract/client.ts";
import type { CommonOptions } from "./cli-args.ts";
import { connectHub, connectPeer } from "./connect.ts";

export interface CliJoin {
  signal: AbortSignal;
  /** Default name when --name is not given. */
  name?: string;
  explicit?: boolean;
  color?: string;
}

export async function connectForCli(common: CommonOptions, join: CliJoin): Promise<ComsClient> {
  const base = {
    name: common.name ?? join.name ?? "cli",
    explicit: join.explicit ?? true,
    ...(common.project !== undefined && { project: common.project }),
    ...(common.purpose !== undefined && { purpose: common.purpose }),
    ...(join.color !== undefined && { color: join.color }),
  };
  if (!common.net) return connectPeer(base);
  return connectHub({
    ...base,
    ...(common.url !== undefined && { url: common.url }),
    ...(common.token !== undefined && { token: common.token }),
  });
}

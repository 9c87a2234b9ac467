/** Joining for one CLI command: P2P by default, the hub with --net. */
import type { ComsClient } from "../contract/client.ts";
import type { CommonOptions } from "./cli-args.ts";
import { connectHub, connectPeer } from "./connect.ts";
import type { OneShotClient } from "./hub-session.ts";

export interface CliJoin {
  /** Default name when --name is not given. */
  name?: string;
  explicit?: boolean;
  color?: string;
}

const DEFAULT_NAME = "cli";

/** A full agent for `listen`: inbound stream, heartbeats; it leaves when done. */
export async function connectForCli(common: CommonOptions, join: CliJoin = {}): Promise<ComsClient> {
  const base = {
    name: common.name ?? join.name ?? DEFAULT_NAME,
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

/**
 * For list / send / get / await. Over P2P a node lives for this one command.
 * Over the hub the CLI resumes its saved identity and keeps it, so a later
 * `get` or `await` can read the outcome of an earlier `send`.
 */
export async function connectOneShot(common: CommonOptions): Promise<OneShotClient> {
  if (!common.net) return connectForCli(common);
  const { openHubSession } = await import("./hub-session.ts");
  return openHubSession({
    name: common.name ?? DEFAULT_NAME,
    ...(common.project !== undefined && { project: common.project }),
    ...(common.purpose !== undefined && { purpose: common.purpose }),
    ...(common.url !== undefined && { url: common.url }),
    ...(common.token !== undefined && { token: common.token }),
  });
}

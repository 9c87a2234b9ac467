/**
 * The two ways a script joins: as a P2P peer (its own Unix socket) or as a
 * hub client. Both return the same ComsClient. Scripts join as explicit
 * agents unless they ask otherwise, so a one-off script does not show up in
 * everyone's pool widget. Each transport is loaded on first use, so a P2P
 * script never loads the HTTP stack and the reverse.
 */
import type { ComsClient } from "../contract/client.ts";

export interface ConnectPeerOptions {
  /** Discovery namespace (default: derived from `cwd`). */
  project?: string;
  /** Agent name (default: generated; a taken name gets a numeric suffix). */
  name?: string;
  purpose?: string;
  /** `#RRGGBB` for pool widgets. */
  color?: string;
  /** Hidden from listings unless `include_explicit` (default: true for scripts). */
  explicit?: boolean;
  model?: string;
  cwd?: string;
  /** Where PI_COMS_* settings are read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ConnectHubOptions extends ConnectPeerOptions {
  /** Hub URL (default: $PI_COMS_NET_SERVER_URL, else the project's local hub). */
  url?: string;
  /** Bearer token (default: $PI_COMS_NET_AUTH_TOKEN, else the project's local secret). */
  token?: string;
}

/** Join the project's P2P pool: starts a node with its own socket. */
export async function connectPeer(options: ConnectPeerOptions = {}): Promise<ComsClient> {
  const { startP2P } = await import("../peer/node.ts");
  return startP2P({ ...options, explicit: options.explicit ?? true });
}

/** Join a hub: the given URL, or the local hub of the project when none is given. */
export async function connectHub(options: ConnectHubOptions = {}): Promise<ComsClient> {
  const hub = await import("../hub/client/hub-client.ts");
  return hub.connectHub({ ...options, explicit: options.explicit ?? true });
}

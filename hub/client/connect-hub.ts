/**
 * Finding and joining a hub: the URL (given, PI_COMS_NET_SERVER_URL, or the
 * project's discovery file), the token (given, PI_COMS_NET_AUTH_TOKEN, or
 * the project's secret), then a started HubClient; a TLS failure is told as
 * what to do about it.
 */
import { ComsError } from "../../contract/errors.ts";
import { generatedName } from "../../lib/agent-name.ts";
import { hubSettings } from "../../lib/env.ts";
import { checkedProject, projectFromCwd } from "../../lib/project.ts";
import { hubPaths } from "../paths.ts";
import { readSecret } from "../secret.ts";
import { readDiscovery } from "./discovery.ts";
import { nextStartPosition, parseHubUrls, spreadOrder, startOnFirst } from "./endpoints.ts";
import { HubClient } from "./hub-client.ts";

export interface HubConnectOptions {
  /** Hub base URL (http://host:port or https://…), or several comma-separated (hubs of one project, tried in turn); default PI_COMS_NET_SERVER_URL, else the project's discovery file. */
  url?: string;
  /** Hub token; default PI_COMS_NET_AUTH_TOKEN, else the project's server.secret.json. */
  token?: string;
  project?: string;
  cwd?: string;
  name?: string;
  purpose?: string;
  color?: string;
  explicit?: boolean;
  model?: string;
  env?: NodeJS.ProcessEnv;
}

export async function connectHub(opts: HubConnectOptions = {}): Promise<HubClient> {
  const env = opts.env ?? process.env;
  const settings = hubSettings(env);
  const project = opts.project === undefined ? projectFromCwd(opts.cwd) : checkedProject(opts.project);
  const secretPath = hubPaths(project, env).secret;
  const url = opts.url ?? settings.serverUrl ?? readDiscovery(project, env)?.url;
  if (!url) {
    throw new ComsError(
      "PEER_GONE",
      `no hub found for project ${project}: start one (pi-coms-hub, or /coms-net start) or give its URL`,
    );
  }
  const explicitToken = opts.token ?? settings.token;
  const token = explicitToken ?? readSecret(secretPath);
  if (!token) {
    throw new ComsError(
      "UNAUTHORIZED",
      `no hub token: set PI_COMS_NET_AUTH_TOKEN, pass a token, or run where ${secretPath} exists`,
    );
  }
  // This client's own order of the list: clients given the same list start on different hubs.
  const urls = spreadOrder(parseHubUrls(url), nextStartPosition());
  const client = new HubClient({
    url: urls[0] ?? url,
    token,
    // A token someone handed us cannot be refreshed from a file; a discovered one can.
    // A token or URL that is the project's own (from its files, even if passed back in by the caller)
    // may be refreshed from those files; one given from elsewhere (a remote hub) stays as given.
    secretPath:
      explicitToken === undefined || explicitToken === readSecret(secretPath) ? secretPath : undefined,
    ...(urls.length > 1
      ? { urls }
      : url === readDiscovery(project, env)?.url
        ? { discover: () => readDiscovery(project, env)?.url }
        : {}),
    project,
    heartbeatMs: settings.heartbeatMs,
    replyTimeoutMs: settings.messageTtlMs,
    registration: {
      name: opts.name ?? generatedName(),
      purpose: opts.purpose ?? "",
      model: opts.model ?? "",
      explicit: opts.explicit ?? false,
      ...(opts.color ? { color: opts.color } : {}),
    },
  });
  try {
    await startOnFirst(client, urls);
  } catch (error) {
    const tls = tlsFailure(error);
    if (!tls) throw error;
    throw new ComsError(
      "PEER_GONE",
      `cannot verify the TLS certificate of the hub at ${url} (${tls}); for a self-signed hub ` +
        "certificate, start this process with NODE_EXTRA_CA_CERTS=<path to that certificate>",
      { cause: error },
    );
  }
  return client;
}

/** The TLS verification error code somewhere in an error's cause chain (fetch wraps it twice). */
function tlsFailure(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

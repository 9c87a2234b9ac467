/**
 * `pi-coms mcp`: an MCP server on stdin/stdout that joins the pool as one
 * agent, over P2P (default) or a hub (`--hub`). It joins once the MCP client
 * has introduced itself, and leaves when the client goes away (stdin ends)
 * or the process is told to stop; prompts it still held end PEER_GONE.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { ComsClient } from "../contract/client.ts";
import { mcpSettings } from "../lib/env.ts";
import { McpAgent } from "./agent.ts";
import { type ClientInfo, clientLabel, nameFromClient, packageVersion } from "./identity.ts";

export interface McpJoinOptions {
  name?: string;
  purpose?: string;
  project?: string;
  color?: string;
  explicit: boolean;
  /** Join a hub instead of the P2P pool. */
  hub: boolean;
  /** Hub URL or comma-separated URLs (default: PI_COMS_NET_SERVER_URL, else the project's local hub). */
  url?: string;
  token?: string;
}

export function joinerFor(options: McpJoinOptions): (client: ClientInfo | undefined) => Promise<ComsClient> {
  return async (client) => {
    const { connectHub, connectPeer } = await import("../client/connect.ts");
    const base = {
      name: options.name ?? nameFromClient(client),
      model: clientLabel(client),
      explicit: options.explicit,
      ...(options.purpose !== undefined && { purpose: options.purpose }),
      ...(options.project !== undefined && { project: options.project }),
      ...(options.color !== undefined && { color: options.color }),
    };
    if (!options.hub) return connectPeer(base);
    return connectHub({
      ...base,
      ...(options.url !== undefined && { url: options.url }),
      ...(options.token !== undefined && { token: options.token }),
    });
  };
}

/** Serve MCP on this process's stdio until the client goes away or `signal` aborts. */
export async function serveStdio(options: McpJoinOptions, signal: AbortSignal): Promise<void> {
  const settings = mcpSettings();
  const agent = new McpAgent({
    system: options.hub ? "hub" : "p2p",
    join: joinerFor(options),
    maxWaitMs: settings.maxWaitMs,
    progressMs: settings.progressMs,
    version: packageVersion(),
  });
  const transport = new StdioServerTransport();
  const done = new Promise<void>((resolve) => {
    const finish = () => resolve();
    // The client closing its end of our stdin is how it says goodbye.
    process.stdin.once("end", finish);
    process.stdin.once("close", finish);
    transport.onclose = finish;
    if (signal.aborted) finish();
    signal.addEventListener("abort", finish, { once: true });
  });
  await agent.server.connect(transport);
  await done;
  await agent.leave();
  await agent.server.close().catch(() => undefined);
}

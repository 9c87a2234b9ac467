/** Who an MCP agent is: named after the MCP client that runs it, and the version it reports. */
import { readFileSync } from "node:fs";

export interface ClientInfo {
  name: string;
  version: string;
}

/** An agent name from what the MCP client calls itself ("claude-code"), else "mcp". */
export function nameFromClient(client: ClientInfo | undefined): string {
  const cleaned = (client?.name ?? "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 64);
  return cleaned || "mcp";
}

/** What the card's model field says: the MCP client and its version. */
export function clientLabel(client: ClientInfo | undefined): string {
  return client ? `${client.name} ${client.version} (MCP)`.slice(0, 200) : "MCP client";
}

/** pi-coms's version, told to MCP clients (read from a checkout or from dist/). */
export function packageVersion(): string {
  for (const path of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "pi-coms" && pkg.version) return pkg.version;
    } catch {
      // not at this depth (a checkout vs dist/)
    }
  }
  return "0.0.0";
}

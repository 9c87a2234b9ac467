/** The model's tools by name and how their texts name the system, without their definitions (see table.ts). */

/** Which transport a front end's client is joined over. */
export type SystemKind = "p2p" | "hub";

export const TOOL_SUFFIXES = ["list", "send", "get", "await", "reply"] as const;
export type ToolSuffix = (typeof TOOL_SUFFIXES)[number];

export const systemLabel = (system: SystemKind): string =>
  system === "p2p" ? "P2P /coms" : "networked /coms-net";
export const toolPrefix = (system: SystemKind): string => (system === "p2p" ? "coms" : "coms_net");

/** pi's tool names of one system (`coms_*` or `coms_net_*`). */
export function toolNames(system: SystemKind): string[] {
  return TOOL_SUFFIXES.map((suffix) => `${toolPrefix(system)}_${suffix}`);
}

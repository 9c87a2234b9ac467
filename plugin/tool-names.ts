/** The model's tools by name, without their definitions (those load with a system, see tools.ts). */
import { toolPrefix } from "./messages.ts";
import type { SystemKind } from "./state.ts";

export const TOOL_SUFFIXES = ["list", "send", "get", "await", "reply"] as const;
export type ToolSuffix = (typeof TOOL_SUFFIXES)[number];

export function toolNames(system: SystemKind): string[] {
  return TOOL_SUFFIXES.map((suffix) => `${toolPrefix(system)}_${suffix}`);
}

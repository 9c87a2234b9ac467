/**
 * The pi command-line flags pi-coms adds. pi already owns `--name` (the
 * session's display name), so the agent name on the command line is
 * `--coms-name`; without it a valid session name is used, which makes
 * `pi --name coder` name the agent too. Values are checked in flags.ts.
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";

export const CLI_FLAGS = {
  "coms-name": {
    type: "string",
    description: "pi-coms agent name (default: the session name given with --name)",
  },
  purpose: { type: "string", description: "pi-coms: this agent's purpose, shown to peers" },
  project: {
    type: "string",
    description: "pi-coms: project namespace for discovery (default: derived from cwd)",
  },
  color: { type: "string", description: "pi-coms: colour for the pool widget, #RRGGBB" },
  explicit: {
    type: "boolean",
    description: "pi-coms: hide this agent from listings (reachable by exact name)",
  },
  coms: { type: "boolean", description: "pi-coms: run /coms start at session start" },
  "coms-net": { type: "boolean", description: "pi-coms: run /coms-net start at session start" },
} as const;

export function registerCliFlags(pi: ExtensionAPI): void {
  for (const [name, spec] of Object.entries(CLI_FLAGS)) {
    if (spec.type === "boolean") pi.registerFlag(name, { type: "boolean", description: spec.description });
    else pi.registerFlag(name, { type: "string", description: spec.description });
  }
}

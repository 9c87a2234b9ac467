/**
 * What the real-client scenarios share: the bridge as a stdio MCP server a
 * client starts, and scripted-model steps that drive the bridge's tools by
 * their client-side names (`mcp__<server>__coms_*`, the same in Claude Code
 * and Codex, see model-wire-responses.ts).
 */
import type { ChatRequest, ScriptedReply, ToolResultSeen } from "./model-server.ts";
import type { McpServerSpec } from "./real-client-runner.ts";

/** The checkout's CLI entry (`node client/cli.ts mcp ...`), as the docs' stdio snippets start it. */
export { PI_COMS_CLI } from "./mcp-bridge.ts";

import { PI_COMS_CLI } from "./mcp-bridge.ts";

export const SERVER = "coms";
export const MSG_ID = /msg_id "?([0-9A-HJKMNP-TV-Z]{26})/;

/** `pi-coms mcp ARGS` as a stdio server; `env` carries the pool's dirs (Codex passes no other variables). */
export function bridgeServer(args: string[], env: Record<string, string>): Record<string, McpServerSpec> {
  return { [SERVER]: { command: process.execPath, args: [PI_COMS_CLI, "mcp", ...args], env } };
}

/** The client-side name of a bridge tool. */
export const tool = (name: string) => `mcp__${SERVER}__${name}`;

export const call = (name: string, args: Record<string, unknown> = {}): ScriptedReply => ({
  toolCalls: [{ name: tool(name), arguments: args }],
});

/** The tool result the model sees fresh this turn (undefined on the first turn). */
export const fresh = (req: ChatRequest): ToolResultSeen | undefined => req.newToolResults.at(-1);

/** The msg_id a tool result names, if any. */
export const msgIdIn = (text: string): string | undefined => MSG_ID.exec(text)?.[1];

/** A final answer that ends the client's run when a step found nothing to go on (a test then fails fast). */
export const giveUp = (why: string, text: string | undefined) => `gave up (${why}): ${text}`;

/** An await result that says the reply has not come yet: wait again. */
export const stillPending = (text: string) => /pending|no reply yet|still waiting/i.test(text);

/** A receive result that says nothing came before its wait bound: listen again. */
export const nothingYet = (text: string) => /^No peer prompt yet/.test(text);

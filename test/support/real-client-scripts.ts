/**
 * What the real-client scenarios share: the bridge as a stdio MCP server a
 * client starts, and scripted-model steps that drive the bridge's tools by
 * their client-side names (`mcp__<server>__coms_*`, the same in Claude Code
 * and Codex, see model-wire-responses.ts).
 */

import { PI_COMS_CLI } from "./mcp-bridge.ts";
import type { ChatRequest, ModelScript, ScriptedReply, ToolResultSeen } from "./model-server.ts";
import type { McpServerSpec } from "./real-client-runner.ts";

export const SERVER = "coms";
export const MSG_ID = /msg_id "?([0-9A-HJKMNP-TV-Z]{26})/;

/** `node client/cli.ts mcp ARGS` (the checkout's CLI) as a stdio server; `env` carries the pool's dirs (Codex passes no other variables). */
export function bridgeServer(args: string[], env: Record<string, string>): Record<string, McpServerSpec> {
  return { [SERVER]: { command: process.execPath, args: [PI_COMS_CLI, "mcp", ...args], env } };
}

/**
 * Client-side tool names of one MCP server entry. Claude Code keeps the entry's name
 * (`mcp__pi-coms__coms_list`); Codex 0.169.0 turns its "-" into "_" (`mcp__pi_coms`), here assumed
 * for any character outside [A-Za-z0-9_].
 */
export const toolsOf =
  (server: string, client: "claude" | "codex") =>
  (name: string): string =>
    `mcp__${client === "codex" ? server.replace(/[^A-Za-z0-9_]/g, "_") : server}__${name}`;

/** The client-side name of a bridge tool under the entry named SERVER (the same in both clients). */
export const tool = toolsOf(SERVER, "claude");

/** A step calling one tool, by its full client-side name. */
export const callTool = (name: string, args: Record<string, unknown> = {}): ScriptedReply => ({
  toolCalls: [{ name, arguments: args }],
});

/** A step calling one bridge tool under SERVER. */
export const call = (name: string, args: Record<string, unknown> = {}): ScriptedReply =>
  callTool(tool(name), args);

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

type Namer = (name: string) => string;

/**
 * An asking agent: list the pool, send `question` to `to`, await (again while pending), then print
 * "<to> answered: <await result>".
 */
export function leadScript(
  t: Namer,
  to: string,
  question: string,
): (req: ChatRequest) => ScriptedReply | string {
  return (req) => {
    const last = fresh(req);
    if (!last) return callTool(t("coms_list"));
    if (last.name === t("coms_list")) return callTool(t("coms_send"), { to, prompt: question });
    const sent = msgIdIn(req.toolResults.find((r) => r.name === t("coms_send"))?.text ?? "");
    if (!sent) return giveUp("nothing sent", last.text);
    if (last.name === t("coms_send") || (last.name === t("coms_await") && stillPending(last.text)))
      return callTool(t("coms_await"), { msg_id: sent });
    return `${to} answered: ${last.text}`;
  };
}

/** A worker running the worker loop once: receive (again while nothing came), reply `answer`, stop. */
export function workerScript(t: Namer, answer: string): (req: ChatRequest) => ScriptedReply | string {
  return (req) => {
    const last = fresh(req);
    if (!last) return callTool(t("coms_receive"));
    if (last.name === t("coms_receive")) {
      if (nothingYet(last.text)) return callTool(t("coms_receive"));
      const id = msgIdIn(last.text);
      return id ? callTool(t("coms_reply"), { msg_id: id, text: answer }) : giveUp("no prompt", last.text);
    }
    return `Replied: ${last.text}`;
  };
}

/** A model script that runs `steps` for `model` only. */
export function forModel(model: string, steps: (req: ChatRequest) => ScriptedReply | string): ModelScript {
  return (req) => (req.model === model ? steps(req) : undefined);
}

/** The first receive result that carried a prompt. */
export function receivedPrompt(requests: ChatRequest[], t: Namer): string {
  return (
    requests.flatMap((r) => r.newToolResults).find((r) => r.name === t("coms_receive") && MSG_ID.test(r.text))
      ?.text ?? ""
  );
}

/**
 * OpenAI Responses (`POST /v1/responses`), the dialect Codex speaks:
 * response.created, one response.output_item.done per whole item (reasoning,
 * message, function_call), response.completed with usage.
 *
 * MCP tools arrive grouped in a namespace (`{type: "namespace", name:
 * "mcp__<server>", tools: [...]}`); the request view flattens them to
 * `mcp__<server>__<tool>`, the name Claude Code uses, so one script step calls
 * the same tool in both clients. A call to such a flat name goes out as the
 * namespace plus the bare tool name, the only form Codex accepts.
 */
import { randomUUID } from "node:crypto";
import type { ChatMessage, OfferedTool, ScriptedToolCall } from "./model-server.ts";
import {
  argumentsText,
  callId,
  type Dialect,
  estimateTokens,
  namedEvent,
  partsText,
  sseHeaders,
} from "./model-wire.ts";

interface RawTool {
  type?: string;
  name?: string;
  description?: string;
  parameters?: unknown;
  tools?: RawTool[];
}

interface Item {
  type?: string;
  role?: string;
  content?: unknown;
  call_id?: string;
  name?: string;
  namespace?: string;
  arguments?: string;
  output?: unknown;
}

const SEPARATOR = "__";

function flatName(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}${SEPARATOR}${name}` : name;
}

function rawTools(body: Record<string, unknown>): RawTool[] {
  return (Array.isArray(body.tools) ? body.tools : []) as RawTool[];
}

/** The wire form of a call: an explicit namespace, or the offered namespace a flat name falls in. */
function wireName(call: ScriptedToolCall, tools: RawTool[]): { name: string; namespace?: string } {
  if (call.namespace) return { name: call.name, namespace: call.namespace };
  for (const tool of tools) {
    if (tool.type !== "namespace" || !tool.name) continue;
    const prefix = `${tool.name}${SEPARATOR}`;
    const bare = call.name.startsWith(prefix) ? call.name.slice(prefix.length) : undefined;
    if (bare && (tool.tools ?? []).some((t) => t.name === bare)) return { name: bare, namespace: tool.name };
  }
  return { name: call.name };
}

function parseInput(input: unknown): ChatMessage[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  const messages: ChatMessage[] = [];
  for (const item of (Array.isArray(input) ? input : []) as Item[]) {
    const type = item.type ?? (item.role ? "message" : "");
    if (type === "message") {
      const role = (["system", "developer", "assistant"].includes(item.role ?? "") ? item.role : "user") as
        | "system"
        | "developer"
        | "assistant"
        | "user";
      messages.push({ role, content: partsText(item.content) });
    } else if (type === "function_call") {
      const call = {
        id: item.call_id ?? "",
        type: "function",
        function: { name: flatName(item.namespace, item.name ?? ""), arguments: item.arguments ?? "" },
      };
      // Parallel calls (and the text before them) are one assistant turn, as in chat-completions.
      const last = messages.at(-1);
      if (last?.role === "assistant") last.tool_calls = [...(last.tool_calls ?? []), call];
      else messages.push({ role: "assistant", content: "", tool_calls: [call] });
    } else if (type === "function_call_output") {
      messages.push({ role: "tool", tool_call_id: item.call_id ?? "", content: partsText(item.output) });
    }
  }
  return messages;
}

export const responsesDialect: Dialect = {
  name: "responses",
  parse(body) {
    const messages: ChatMessage[] = [];
    if (typeof body.instructions === "string" && body.instructions)
      messages.push({ role: "system", content: body.instructions });
    messages.push(...parseInput(body.input));
    const tools: OfferedTool[] = rawTools(body).flatMap((tool) => {
      if (tool.type === "namespace")
        return (tool.tools ?? []).map((t) => ({
          name: flatName(tool.name, t.name ?? ""),
          description: t.description ?? "",
          parameters: t.parameters,
        }));
      return tool.type === "function" && tool.name
        ? [{ name: tool.name, description: tool.description ?? "", parameters: tool.parameters }]
        : [];
    });
    return { messages, tools };
  },
  error(status, message) {
    return { error: { message, type: status >= 500 ? "server_error" : "invalid_request_error", code: null } };
  },
  stream(res, req, reply) {
    const id = `resp_${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const output: Array<Record<string, unknown>> = [];
    const itemId = (prefix: string) => `${prefix}_${randomUUID().replaceAll("-", "")}`;
    if (reply.thinking)
      output.push({
        type: "reasoning",
        id: itemId("rs"),
        summary: [{ type: "summary_text", text: reply.thinking }],
      });
    if (reply.text)
      output.push({
        type: "message",
        id: itemId("msg"),
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: reply.text, annotations: [] }],
      });
    const tools = rawTools(req.body);
    for (const call of reply.toolCalls ?? []) {
      output.push({
        type: "function_call",
        id: itemId("fc"),
        call_id: callId(call, "call_"),
        ...wireName(call, tools),
        arguments: argumentsText(call),
        status: "completed",
      });
    }
    const response = { id, object: "response", created_at: created, model: req.model };
    res.writeHead(200, sseHeaders);
    res.write(
      namedEvent("response.created", {
        type: "response.created",
        response: { ...response, status: "in_progress", output: [] },
      }),
    );
    output.forEach((item, index) => {
      res.write(
        namedEvent("response.output_item.done", {
          type: "response.output_item.done",
          output_index: index,
          item,
        }),
      );
    });
    const inputTokens = reply.promptTokens ?? estimateTokens(req.body.input);
    const outputTokens = estimateTokens(output);
    res.write(
      namedEvent("response.completed", {
        type: "response.completed",
        response: {
          ...response,
          status: "completed",
          output,
          usage: {
            input_tokens: inputTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: inputTokens + outputTokens,
          },
        },
      }),
    );
    res.end();
  },
};

/**
 * Anthropic Messages (`POST /v1/messages`), the dialect Claude Code speaks:
 * message_start, a content block per thinking / text / tool_use part with its
 * deltas, message_delta with the stop reason, message_stop. A request without
 * `stream: true` gets the whole message as JSON.
 */
import { randomUUID } from "node:crypto";
import type { ChatMessage, OfferedTool, ScriptedReply } from "./model-server.ts";
import {
  argumentsText,
  callId,
  type Dialect,
  estimateTokens,
  namedEvent,
  partsText,
  pieces,
  sseHeaders,
} from "./model-wire.ts";

interface Block {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: unknown;
  is_error?: boolean;
}

function parseMessage(message: { role?: string; content?: string | Block[] }): ChatMessage[] {
  const role = message.role === "assistant" ? "assistant" : "user";
  if (!Array.isArray(message.content)) return [{ role, content: message.content ?? "" }];
  const blocks = message.content;
  const text = blocks
    .filter((b) => b.type === "text")
    .map((b) => b.text ?? "")
    .join("\n");
  if (role === "assistant") {
    const calls = blocks
      .filter((b) => b.type === "tool_use")
      .map((b) => ({
        id: b.id ?? "",
        type: "function",
        function: { name: b.name ?? "", arguments: JSON.stringify(b.input ?? {}) },
      }));
    return [{ role, content: text, ...(calls.length > 0 ? { tool_calls: calls } : {}) }];
  }
  // The API puts tool results first in a user turn; any text after them is the user's (or the client's reminders).
  const results: ChatMessage[] = blocks
    .filter((b) => b.type === "tool_result")
    .map((b) => ({
      role: "tool",
      tool_call_id: b.tool_use_id ?? "",
      content: partsText(b.content),
      ...(b.is_error ? { is_error: true } : {}),
    }));
  return text ? [...results, { role, content: text }] : results;
}

/** The content blocks of a scripted reply, as the whole message carries them. */
function contentBlocks(reply: ScriptedReply): Block[] {
  const blocks: Block[] = [];
  if (reply.thinking) blocks.push({ type: "thinking", text: reply.thinking });
  if (reply.text) blocks.push({ type: "text", text: reply.text });
  for (const call of reply.toolCalls ?? []) {
    const raw = argumentsText(call);
    let input: unknown;
    try {
      input = JSON.parse(raw);
    } catch {
      input = raw;
    }
    blocks.push({ type: "tool_use", id: callId(call, "toolu_"), name: call.name, input });
  }
  return blocks;
}

function wireBlock(block: Block): Record<string, unknown> {
  if (block.type === "thinking") return { type: "thinking", thinking: block.text, signature: "scripted" };
  if (block.type === "text") return { type: "text", text: block.text };
  return { type: "tool_use", id: block.id, name: block.name, input: block.input };
}

export const anthropicDialect: Dialect = {
  name: "anthropic",
  parse(body) {
    const messages: ChatMessage[] = [];
    const system = Array.isArray(body.system)
      ? body.system.map((block) => partsText([block])).join("\n")
      : partsText(body.system);
    if (system) messages.push({ role: "system", content: system });
    for (const message of Array.isArray(body.messages) ? body.messages : [])
      messages.push(...parseMessage(message));
    const rawTools = (Array.isArray(body.tools) ? body.tools : []) as Array<{
      name?: string;
      description?: string;
      input_schema?: unknown;
    }>;
    const tools: OfferedTool[] = rawTools.flatMap((tool) =>
      tool.name
        ? [{ name: tool.name, description: tool.description ?? "", parameters: tool.input_schema }]
        : [],
    );
    return { messages, tools };
  },
  error(status, message) {
    const type = status === 429 ? "rate_limit_error" : status >= 500 ? "api_error" : "invalid_request_error";
    return { type: "error", error: { type, message } };
  },
  stream(res, req, reply) {
    const id = `msg_${randomUUID().replaceAll("-", "")}`;
    const blocks = contentBlocks(reply);
    const stopReason = (reply.toolCalls ?? []).length > 0 ? "tool_use" : "end_turn";
    const inputTokens = reply.promptTokens ?? estimateTokens(req.body.messages);
    const outputTokens = estimateTokens(blocks);
    const usage = { input_tokens: inputTokens, output_tokens: outputTokens };
    if (req.body.stream !== true) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id,
          type: "message",
          role: "assistant",
          model: req.model,
          content: blocks.map(wireBlock),
          stop_reason: stopReason,
          stop_sequence: null,
          usage,
        }),
      );
      return;
    }
    res.writeHead(200, sseHeaders);
    res.write(
      namedEvent("message_start", {
        type: "message_start",
        message: {
          id,
          type: "message",
          role: "assistant",
          model: req.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: 1 },
        },
      }),
    );
    blocks.forEach((block, index) => {
      const start = wireBlock(block);
      const delta = (d: Record<string, unknown>) =>
        res.write(namedEvent("content_block_delta", { type: "content_block_delta", index, delta: d }));
      if (block.type === "thinking") {
        res.write(
          namedEvent("content_block_start", {
            type: "content_block_start",
            index,
            content_block: { ...start, thinking: "", signature: "" },
          }),
        );
        for (const part of pieces(block.text ?? "")) delta({ type: "thinking_delta", thinking: part });
        delta({ type: "signature_delta", signature: "scripted" });
      } else if (block.type === "text") {
        res.write(
          namedEvent("content_block_start", {
            type: "content_block_start",
            index,
            content_block: { type: "text", text: "" },
          }),
        );
        for (const part of pieces(block.text ?? "")) delta({ type: "text_delta", text: part });
      } else {
        res.write(
          namedEvent("content_block_start", {
            type: "content_block_start",
            index,
            content_block: { ...start, input: {} },
          }),
        );
        const raw = typeof block.input === "string" ? block.input : JSON.stringify(block.input);
        for (const part of pieces(raw, 24)) delta({ type: "input_json_delta", partial_json: part });
      }
      res.write(namedEvent("content_block_stop", { type: "content_block_stop", index }));
    });
    res.write(
      namedEvent("message_delta", {
        type: "message_delta",
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: outputTokens },
      }),
    );
    res.write(namedEvent("message_stop", { type: "message_stop" }));
    res.end();
  },
};

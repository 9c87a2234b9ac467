/**
 * What every wire dialect of the scripted model server provides: turning a
 * request body into one chat-shaped conversation (so scripts read every
 * client the same way) and streaming a scripted reply back in the client's
 * own SSE shape.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type {
  ChatMessage,
  ChatRequest,
  OfferedTool,
  ScriptedReply,
  ScriptedToolCall,
} from "./model-server.ts";

export type DialectName = "chat" | "anthropic" | "responses";

/** A request body read into the chat-completions view; system text comes first as a system message. */
export interface Conversation {
  messages: ChatMessage[];
  tools: OfferedTool[];
}

export interface Dialect {
  name: DialectName;
  parse(body: Record<string, unknown>): Conversation;
  stream(res: ServerResponse, req: ChatRequest, reply: ScriptedReply): void;
  /** Status and body of an error in this dialect's shape. */
  error(status: number, message: string): Record<string, unknown>;
}

export const sseHeaders = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
} as const;

/** A named SSE event (Anthropic and Responses name theirs; chat-completions does not). */
export function namedEvent(event: string, data: Record<string, unknown>): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Split text into a few pieces so the client really assembles deltas. */
export function pieces(text: string, size = 16): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** The call's arguments as sent on the wire: an object JSON-encoded, a string as-is. */
export function argumentsText(call: ScriptedToolCall): string {
  return typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments ?? {});
}

export function callId(call: ScriptedToolCall, prefix: string): string {
  return call.id ?? `${prefix}${randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** Text of a content value: a string, or the text of its parts (`text`, `input_text`, `output_text`). */
export function partsText(content: unknown): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part: { text?: unknown }) => (typeof part?.text === "string" ? part.text : ""))
    .join("");
}

export function estimateTokens(value: unknown): number {
  return Math.ceil(JSON.stringify(value ?? "").length / 4);
}

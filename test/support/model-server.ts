/**
 * A scripted stand-in for an LLM on 127.0.0.1, speaking three wire dialects
 * over SSE: OpenAI chat-completions (`POST /v1/chat/completions`, pi's
 * `openai-completions` API), Anthropic Messages (`POST /v1/messages`, Claude
 * Code) and OpenAI Responses (`POST /v1/responses`, Codex).
 *
 * Every request is read into one chat-shaped view and every dialect plays the
 * same scripted replies, so a script does not care which client asks. Each
 * client process gets its own model id, so one server can drive several
 * sessions: replies are queued per model id (`reply`) or computed by a script
 * (`script`), and every request is recorded for assertions.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type Conversation,
  type Dialect,
  type DialectName,
  estimateTokens,
  partsText,
} from "./model-wire.ts";
import { anthropicDialect } from "./model-wire-anthropic.ts";
import { chatDialect } from "./model-wire-chat.ts";
import { responsesDialect } from "./model-wire-responses.ts";

export type { DialectName } from "./model-wire.ts";

/** One message of the chat-completions request, as pi sent it. */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | Array<{ type: string; text?: string; [key: string]: unknown }> | null;
  tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
  [key: string]: unknown;
}

export interface OfferedTool {
  name: string;
  description: string;
  parameters: unknown;
}

export interface ToolResultSeen {
  toolCallId: string;
  /** Name of the tool, looked up from the assistant message that called it. */
  name: string | undefined;
  text: string;
}

/** A recorded request with the views tests usually want. */
export interface ChatRequest {
  /** 0-based position among all requests this server received. */
  seq: number;
  /** The wire dialect the request came in; the other fields are the same view for all. */
  dialect: DialectName;
  /** 0-based position among requests for this model id. */
  turn: number;
  model: string;
  messages: ChatMessage[];
  /** Offered tools; an MCP tool Codex groups in a namespace is named `mcp__<server>__<tool>` as in Claude Code. */
  tools: OfferedTool[];
  /** The system/developer messages joined by blank lines. */
  system: string;
  /** Text of the last user message ("" when there is none). */
  lastUserText: string;
  /** Every tool result in the conversation, oldest first. */
  toolResults: ToolResultSeen[];
  /** The tool result(s) after the last assistant message: what the model sees fresh this turn. */
  newToolResults: ToolResultSeen[];
  /** The whole conversation flattened to text, for `includes` checks. */
  transcript: string;
  body: Record<string, unknown>;
}

export interface ScriptedToolCall {
  /** In the Responses dialect, `mcp__<server>__<tool>` goes out as namespace `mcp__<server>` + name `<tool>`. */
  name: string;
  /** Responses dialect only: send this namespace with the bare `name`. */
  namespace?: string;
  /** An object is JSON-encoded; a string is sent as-is (to test malformed arguments). */
  arguments?: Record<string, unknown> | string;
  id?: string;
}

/** What the scripted model answers. Text and tool calls may be combined. */
export interface ScriptedReply {
  text?: string;
  toolCalls?: ScriptedToolCall[];
  /** Reasoning text streamed before the answer. */
  thinking?: string;
  /** Prompt tokens reported in usage (drives pi's context-usage figure). Default: a rough size estimate. */
  promptTokens?: number;
  /** Answer with this HTTP error instead of a stream. */
  httpError?: { status: number; message: string };
}

export type ReplyStep =
  | ScriptedReply
  | string
  | ((req: ChatRequest) => ScriptedReply | string | Promise<ScriptedReply | string>);

/** Decides the reply when no queued step exists for the model. Return undefined to fall back to `defaultReply`. */
export type ModelScript = (
  req: ChatRequest,
) => ScriptedReply | string | undefined | Promise<ScriptedReply | string | undefined>;

export interface ModelServerOptions {
  script?: ModelScript;
  /** Reply when neither a queued step nor the script answers. Default: the text "ok". */
  defaultReply?: ScriptedReply | string;
}

export interface ModelServer {
  /** Base URL for models.json and Codex's provider, e.g. http://127.0.0.1:41234/v1 */
  readonly baseUrl: string;
  /** The same server without the /v1 path, e.g. http://127.0.0.1:41234 (ANTHROPIC_BASE_URL). */
  readonly origin: string;
  readonly port: number;
  /** Every request received, in arrival order. */
  readonly requests: ChatRequest[];
  /** Requests that got `defaultReply` because nothing was scripted. */
  readonly unscripted: ChatRequest[];
  /** Fallback script for every model; replaceable at any time. */
  script: ModelScript | undefined;
  /** Queue replies for one model id; consumed one per request, before the script is asked. */
  reply(model: string, ...steps: ReplyStep[]): void;
  /** Steps still queued for a model. */
  pending(model: string): number;
  requestsFor(model: string): ChatRequest[];
  /** Index of the next request; pass as `since` to wait only for later requests. */
  mark(): number;
  /**
   * Resolves with the first recorded request at or after `since` (default 0: past ones count too)
   * matching `predicate`; rejects after `timeoutMs` (default 15 s) listing what was seen.
   */
  waitForRequest(
    predicate: (req: ChatRequest) => boolean,
    opts?: { timeoutMs?: number; since?: number },
  ): Promise<ChatRequest>;
  close(): Promise<void>;
}

function toRequest(
  dialect: DialectName,
  conversation: Conversation,
  body: Record<string, unknown>,
  seq: number,
  turn: number,
): ChatRequest {
  const { messages, tools } = conversation;
  const callNames = new Map<string, string>();
  const toolResults: ToolResultSeen[] = [];
  let lastAssistant = -1;
  let lastUserText = "";
  messages.forEach((message, index) => {
    if (message.role === "assistant") {
      lastAssistant = index;
      for (const call of message.tool_calls ?? []) callNames.set(call.id, call.function.name);
    } else if (message.role === "tool" && message.tool_call_id) {
      toolResults.push({
        toolCallId: message.tool_call_id,
        name: callNames.get(message.tool_call_id),
        text: partsText(message.content),
      });
    } else if (message.role === "user") {
      lastUserText = partsText(message.content);
    }
  });
  const freshIds = new Set(
    messages
      .slice(lastAssistant + 1)
      .flatMap((m) => (m.role === "tool" && m.tool_call_id ? [m.tool_call_id] : [])),
  );
  const transcript = messages
    .map((m) => {
      const calls = (m.tool_calls ?? [])
        .map((c) => `[call ${c.function.name} ${c.function.arguments}]`)
        .join(" ");
      return `${m.role}: ${partsText(m.content)}${calls ? ` ${calls}` : ""}`;
    })
    .join("\n");
  return {
    seq,
    dialect,
    turn,
    model: typeof body.model === "string" ? body.model : "",
    messages,
    tools,
    system: messages
      .filter((m) => m.role === "system" || m.role === "developer")
      .map((m) => partsText(m.content))
      .join("\n\n"),
    lastUserText,
    toolResults,
    newToolResults: toolResults.filter((r) => freshIds.has(r.toolCallId)),
    transcript,
    body,
  };
}

function normalize(reply: ScriptedReply | string): ScriptedReply {
  return typeof reply === "string" ? { text: reply } : reply;
}

/** Which dialect serves a POST path; count_tokens is answered apart (Claude Code may ask it). */
function dialectFor(path: string): Dialect | undefined {
  if (path.endsWith("/chat/completions")) return chatDialect;
  if (path.endsWith("/messages")) return anthropicDialect;
  if (path.endsWith("/responses")) return responsesDialect;
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startModelServer(options: ModelServerOptions = {}): Promise<ModelServer> {
  const requests: ChatRequest[] = [];
  const unscripted: ChatRequest[] = [];
  const queues = new Map<string, ReplyStep[]>();
  const watchers = new Set<{ predicate: (r: ChatRequest) => boolean; resolve: (r: ChatRequest) => void }>();
  let closed = false;
  const defaultReply = normalize(options.defaultReply ?? "ok");

  async function decide(req: ChatRequest): Promise<ScriptedReply> {
    const step = queues.get(req.model)?.shift();
    if (step !== undefined) return normalize(typeof step === "function" ? await step(req) : step);
    const scripted = api.script ? await api.script(req) : undefined;
    if (scripted !== undefined) return normalize(scripted);
    unscripted.push(req);
    return defaultReply;
  }

  async function handle(httpReq: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (httpReq.url ?? "").split("?")[0];
    if (httpReq.method === "GET" && path?.endsWith("/models")) {
      const ids = [...new Set([...queues.keys(), ...requests.map((r) => r.model)])];
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: ids.map((id) => ({ id, object: "model" })) }));
      return;
    }
    const dialect = httpReq.method === "POST" && path ? dialectFor(path) : undefined;
    const counting = httpReq.method === "POST" && path?.endsWith("/messages/count_tokens");
    if (!dialect && !counting) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `no route ${httpReq.method} ${path}` } }));
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(httpReq)) as Record<string, unknown>;
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify((dialect ?? anthropicDialect).error(400, "body is not JSON")));
      return;
    }
    if (!dialect) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ input_tokens: estimateTokens(body.messages) }));
      return;
    }
    const model = typeof body.model === "string" ? body.model : "";
    const req = toRequest(
      dialect.name,
      dialect.parse(body),
      body,
      requests.length,
      requests.filter((r) => r.model === model).length,
    );
    requests.push(req);
    for (const watcher of [...watchers]) {
      if (watcher.predicate(req)) {
        watchers.delete(watcher);
        watcher.resolve(req);
      }
    }
    let reply: ScriptedReply;
    try {
      reply = await decide(req);
    } catch (error) {
      reply = { httpError: { status: 500, message: `model script threw: ${String(error)}` } };
    }
    // The client may have aborted while a slow script was deciding.
    if (res.destroyed || httpReq.socket.destroyed) return;
    if (reply.httpError) {
      res.writeHead(reply.httpError.status, { "content-type": "application/json" });
      res.end(JSON.stringify(dialect.error(reply.httpError.status, reply.httpError.message)));
      return;
    }
    dialect.stream(res, req, reply);
  }

  const server = createServer((httpReq, res) => {
    handle(httpReq, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const api: ModelServer = {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    unscripted,
    script: options.script,
    reply(model, ...steps) {
      const queue = queues.get(model) ?? [];
      queue.push(...steps);
      queues.set(model, queue);
    },
    pending(model) {
      return queues.get(model)?.length ?? 0;
    },
    requestsFor(model) {
      return requests.filter((r) => r.model === model);
    },
    mark() {
      return requests.length;
    },
    waitForRequest(predicate, opts = {}) {
      const since = opts.since ?? 0;
      const found = requests.slice(since).find(predicate);
      if (found) return Promise.resolve(found);
      const timeoutMs = opts.timeoutMs ?? 15_000;
      return new Promise((resolve, reject) => {
        const watcher = {
          predicate,
          resolve: (r: ChatRequest) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        const timer = setTimeout(() => {
          watchers.delete(watcher);
          reject(
            new Error(
              `no model request matched within ${timeoutMs} ms; saw ${requests.length}: ${requests
                .map((r) => `#${r.seq} ${r.model} last user=${JSON.stringify(r.lastUserText.slice(0, 80))}`)
                .join("; ")}`,
            ),
          );
        }, timeoutMs);
        watchers.add(watcher);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

/** A reply that waits until the test opens it: makes a session "busy" for as long as needed. */
export interface Gate {
  /** Resolves once `open()` was called. */
  readonly opened: Promise<void>;
  open(): void;
  /** A reply step that holds the model's answer until `open()`, then answers `reply`. */
  step(reply: ScriptedReply | string): ReplyStep;
}

export function createGate(): Gate {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    opened,
    open,
    step(reply) {
      return async () => {
        await opened;
        return reply;
      };
    },
  };
}

/**
 * OpenAI chat-completions (`POST /v1/chat/completions`), the dialect pi's
 * `openai-completions` API speaks: text deltas, tool-call deltas,
 * finish_reason, a usage chunk, then `[DONE]`.
 */
import { randomUUID } from "node:crypto";
import type { ChatMessage, OfferedTool } from "./model-server.ts";
import { argumentsText, callId, type Dialect, pieces, sseHeaders } from "./model-wire.ts";

const data = (chunk: unknown): string => `data: ${JSON.stringify(chunk)}\n\n`;

export const chatDialect: Dialect = {
  name: "chat",
  parse(body) {
    const messages = (Array.isArray(body.messages) ? body.messages : []) as ChatMessage[];
    const rawTools = (Array.isArray(body.tools) ? body.tools : []) as Array<{ function?: OfferedTool }>;
    return { messages, tools: rawTools.flatMap((tool) => (tool.function ? [tool.function] : [])) };
  },
  error(_status, message) {
    return { error: { message, type: "scripted_error" } };
  },
  stream(res, req, reply) {
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      data({
        id,
        object: "chat.completion.chunk",
        created,
        model: req.model,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    res.writeHead(200, sseHeaders);
    res.write(chunk({ role: "assistant", content: "" }));
    if (reply.thinking)
      for (const part of pieces(reply.thinking)) res.write(chunk({ reasoning_content: part }));
    if (reply.text) for (const part of pieces(reply.text)) res.write(chunk({ content: part }));
    const calls = reply.toolCalls ?? [];
    calls.forEach((call, index) => {
      res.write(
        chunk({
          tool_calls: [
            {
              index,
              id: callId(call, "call_"),
              type: "function",
              function: { name: call.name, arguments: "" },
            },
          ],
        }),
      );
      for (const part of pieces(argumentsText(call), 24))
        res.write(chunk({ tool_calls: [{ index, function: { arguments: part } }] }));
    });
    res.write(chunk({}, calls.length > 0 ? "tool_calls" : "stop"));
    const promptTokens = reply.promptTokens ?? Math.ceil(JSON.stringify(req.messages).length / 4);
    const completionTokens = Math.ceil(((reply.text ?? "").length + JSON.stringify(calls).length) / 4);
    res.write(
      data({
        id,
        object: "chat.completion.chunk",
        created,
        model: req.model,
        choices: [],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      }),
    );
    res.write("data: [DONE]\n\n");
    res.end();
  },
};

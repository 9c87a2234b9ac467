/**
 * The scripted model server's Anthropic Messages (Claude Code) and OpenAI
 * Responses (Codex) dialects over real HTTP: their SSE events, how requests
 * are read into the shared view, error shapes, and one script serving all
 * three dialects.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ModelServer, startModelServer } from "./support/model-server.ts";

/** Named SSE events as [event, data] pairs. */
async function namedEvents(res: Response): Promise<Array<[string, Record<string, unknown>]>> {
  const raw = await res.text();
  return raw
    .split("\n\n")
    .filter((block) => block.startsWith("event: "))
    .map((block) => {
      const [eventLine, dataLine] = block.split("\n");
      return [
        (eventLine ?? "").slice("event: ".length),
        JSON.parse((dataLine ?? "").slice("data: ".length)) as Record<string, unknown>,
      ];
    });
}

/** The text a chat-completions stream carries. */
async function chatText(res: Response): Promise<string> {
  return (await res.text())
    .split("\n\n")
    .filter((block) => block.startsWith("data: {"))
    .map(
      (block) =>
        JSON.parse(block.slice("data: ".length)) as { choices: Array<{ delta: { content?: string } }> },
    )
    .map((chunk) => chunk.choices[0]?.delta.content ?? "")
    .join("");
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("scripted model server: Anthropic Messages dialect", () => {
  let server: ModelServer;
  before(async () => {
    server = await startModelServer();
  });
  after(async () => {
    await server?.close();
  });

  it("streams thinking, text and tool_use blocks as message_start … message_stop", async () => {
    server.reply("claude-a", {
      thinking: "let me think about it",
      text: "calling the tool now, with a long enough text",
      toolCalls: [{ name: "mcp__coms__coms_list", arguments: { all: true }, id: "toolu_1" }],
    });
    const res = await post(`${server.origin}/v1/messages?beta=true`, {
      model: "claude-a",
      stream: true,
      messages: [{ role: "user", content: "go" }],
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events = await namedEvents(res);
    for (const [name, data] of events) assert.equal(data.type, name);
    const names = events.map(([name]) => name);
    assert.equal(names[0], "message_start");
    assert.deepEqual(names.slice(-2), ["message_delta", "message_stop"]);
    const starts = events.filter(([n]) => n === "content_block_start").map(([, d]) => d.content_block);
    assert.deepEqual(
      starts.map((b) => (b as { type: string }).type),
      ["thinking", "text", "tool_use"],
    );
    assert.deepEqual(starts[2], { type: "tool_use", id: "toolu_1", name: "mcp__coms__coms_list", input: {} });
    const deltas = (index: number, key: string) =>
      events
        .filter(([n, d]) => n === "content_block_delta" && d.index === index)
        .map(([, d]) => (d.delta as Record<string, string>)[key] ?? "")
        .join("");
    assert.equal(deltas(0, "thinking"), "let me think about it");
    assert.equal(deltas(1, "text"), "calling the tool now, with a long enough text");
    assert.deepEqual(JSON.parse(deltas(2, "partial_json")), { all: true });
    assert.equal(events.filter(([n]) => n === "content_block_stop").length, 3);
    const stop = events.find(([n]) => n === "message_delta")?.[1];
    assert.equal((stop?.delta as { stop_reason?: string } | undefined)?.stop_reason, "tool_use");
  });

  it("reads system blocks, tools, tool_use and tool_result blocks into the shared view", async () => {
    const since = server.mark();
    server.reply("claude-b", "done");
    const res = await post(`${server.origin}/v1/messages?beta=true`, {
      model: "claude-b",
      stream: true,
      system: [
        { type: "text", text: "you are scripted" },
        { type: "text", text: "be brief" },
      ],
      tools: [{ name: "mcp__coms__coms_await", description: "wait", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: "ask the reviewer" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "asking" },
            { type: "tool_use", id: "t1", name: "mcp__coms__coms_send", input: { to: "r" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "sent" }] },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "t2", name: "mcp__coms__coms_await", input: {} }],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "t2", content: [{ type: "text", text: "the answer" }] },
          ],
        },
      ],
    });
    const events = await namedEvents(res);
    const stop = events.find(([n]) => n === "message_delta")?.[1];
    assert.equal((stop?.delta as { stop_reason?: string } | undefined)?.stop_reason, "end_turn");
    const req = await server.waitForRequest((r) => r.model === "claude-b", { since });
    assert.equal(req.dialect, "anthropic");
    assert.equal(req.system, "you are scripted\nbe brief");
    assert.equal(req.lastUserText, "ask the reviewer");
    assert.deepEqual(
      req.tools.map((t) => [t.name, t.parameters]),
      [["mcp__coms__coms_await", { type: "object" }]],
    );
    assert.deepEqual(req.toolResults, [
      { toolCallId: "t1", name: "mcp__coms__coms_send", text: "sent" },
      { toolCallId: "t2", name: "mcp__coms__coms_await", text: "the answer" },
    ]);
    assert.deepEqual(
      req.newToolResults.map((r) => r.text),
      ["the answer"],
    );
    assert.match(req.transcript, /\[call mcp__coms__coms_send \{"to":"r"\}\]/);
  });

  it("answers without stream as one JSON message, counts tokens, and shapes errors the Anthropic way", async () => {
    server.reply("claude-c", "plain", { httpError: { status: 529, message: "overloaded" } });
    const plain = await post(`${server.origin}/v1/messages`, { model: "claude-c", messages: [] });
    const message = (await plain.json()) as { type: string; content: unknown; stop_reason: string };
    assert.equal(message.type, "message");
    assert.deepEqual(message.content, [{ type: "text", text: "plain" }]);
    assert.equal(message.stop_reason, "end_turn");
    const failed = await post(`${server.origin}/v1/messages`, {
      model: "claude-c",
      stream: true,
      messages: [],
    });
    assert.equal(failed.status, 529);
    assert.deepEqual(await failed.json(), {
      type: "error",
      error: { type: "api_error", message: "overloaded" },
    });
    const counted = await post(`${server.origin}/v1/messages/count_tokens?beta=true`, {
      model: "claude-c",
      messages: [{ role: "user", content: "count me" }],
    });
    assert.equal(typeof ((await counted.json()) as { input_tokens: number }).input_tokens, "number");
    assert.equal(server.requestsFor("claude-c").length, 2, "count_tokens is not a model turn");
  });
});

describe("scripted model server: OpenAI Responses dialect", () => {
  let server: ModelServer;
  before(async () => {
    server = await startModelServer();
  });
  after(async () => {
    await server?.close();
  });

  const namespaceTools = [
    {
      type: "namespace",
      name: "mcp__coms",
      tools: [{ type: "function", name: "coms_wait", description: "wait for a prompt", parameters: {} }],
    },
    { type: "function", name: "shell", description: "run", parameters: { type: "object" } },
    { type: "web_search" },
  ];

  it("streams response.created, whole items and response.completed; flat MCP names go out namespaced", async () => {
    server.reply("codex-a", {
      thinking: "plan",
      text: "on it",
      toolCalls: [
        { name: "mcp__coms__coms_wait", arguments: { timeout_ms: 5 }, id: "call_1" },
        { name: "shell", arguments: "{}", id: "call_2" },
        { name: "other", namespace: "mcp__x", id: "call_3" },
      ],
    });
    const res = await post(`${server.baseUrl}/responses`, {
      model: "codex-a",
      stream: true,
      input: "go",
      tools: namespaceTools,
    });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events = await namedEvents(res);
    for (const [name, data] of events) assert.equal(data.type, name);
    assert.deepEqual(
      events.map(([n]) => n),
      ["response.created", ...Array(5).fill("response.output_item.done"), "response.completed"],
    );
    const items = events.slice(1, -1).map(([, d]) => d.item as Record<string, unknown>);
    assert.deepEqual(
      items.map((i) => i.type),
      ["reasoning", "message", "function_call", "function_call", "function_call"],
    );
    assert.deepEqual(items[1]?.content, [{ type: "output_text", text: "on it", annotations: [] }]);
    const call = (i: number) => {
      const { call_id, name, namespace, arguments: args } = items[i] as Record<string, unknown>;
      return { call_id, name, namespace, args };
    };
    assert.deepEqual(call(2), {
      call_id: "call_1",
      name: "coms_wait",
      namespace: "mcp__coms",
      args: '{"timeout_ms":5}',
    });
    assert.deepEqual(call(3), { call_id: "call_2", name: "shell", namespace: undefined, args: "{}" });
    assert.deepEqual(call(4), { call_id: "call_3", name: "other", namespace: "mcp__x", args: "{}" });
    const completed = events.at(-1)?.[1].response as { status: string; output: unknown[]; usage: object };
    assert.equal(completed.status, "completed");
    assert.deepEqual(completed.output, items);
    assert.ok("total_tokens" in completed.usage);
  });

  it("reads instructions, messages, namespaced calls and their outputs into the shared view", async () => {
    const since = server.mark();
    server.reply("codex-b", "fine");
    await (
      await post(`${server.baseUrl}/responses`, {
        model: "codex-b",
        stream: true,
        instructions: "you are codex",
        tools: namespaceTools,
        input: [
          { type: "message", role: "developer", content: [{ type: "input_text", text: "sandbox rules" }] },
          { type: "message", role: "user", content: [{ type: "input_text", text: "wait for a prompt" }] },
          { type: "reasoning", summary: [] },
          {
            type: "function_call",
            call_id: "c1",
            name: "coms_wait",
            namespace: "mcp__coms",
            arguments: "{}",
          },
          { type: "function_call", call_id: "c2", name: "shell", arguments: "{}" },
          {
            type: "function_call_output",
            call_id: "c1",
            output: [
              { type: "input_text", text: "Wall time: 0.1 seconds\nOutput:" },
              { type: "input_text", text: "a prompt" },
            ],
          },
          { type: "function_call_output", call_id: "c2", output: "ran" },
        ],
      })
    ).text();
    const req = await server.waitForRequest((r) => r.model === "codex-b", { since });
    assert.equal(req.dialect, "responses");
    assert.equal(req.system, "you are codex\n\nsandbox rules");
    assert.equal(req.lastUserText, "wait for a prompt");
    assert.deepEqual(
      req.tools.map((t) => t.name),
      ["mcp__coms__coms_wait", "shell"],
    );
    assert.deepEqual(req.newToolResults, [
      { toolCallId: "c1", name: "mcp__coms__coms_wait", text: "Wall time: 0.1 seconds\nOutput:a prompt" },
      { toolCallId: "c2", name: "shell", text: "ran" },
    ]);
  });

  it("shapes errors the OpenAI way", async () => {
    server.reply("codex-c", { httpError: { status: 400, message: "bad input" } });
    const res = await post(`${server.baseUrl}/responses`, { model: "codex-c", stream: true, input: "x" });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      error: { message: "bad input", type: "invalid_request_error", code: null },
    });
  });
});

describe("scripted model server: one script across dialects", () => {
  it("one model's queue and script answer whichever dialect asks, and each request says its dialect", async () => {
    const server = await startModelServer();
    try {
      server.reply("any", "first", "second");
      server.script = (req) => (req.model === "any" ? `script via ${req.dialect}` : undefined);
      const chat = await chatText(
        await post(`${server.baseUrl}/chat/completions`, {
          model: "any",
          stream: true,
          messages: [{ role: "user", content: "1" }],
        }),
      );
      const anthropic = await namedEvents(
        await post(`${server.origin}/v1/messages`, { model: "any", stream: true, messages: [] }),
      );
      const responses = await namedEvents(
        await post(`${server.baseUrl}/responses`, { model: "any", stream: true, input: "3" }),
      );
      assert.equal(chat, "first");
      assert.equal(
        anthropic
          .filter(([n]) => n === "content_block_delta")
          .map(([, d]) => (d.delta as { text: string }).text)
          .join(""),
        "second",
      );
      const item = responses.find(([n]) => n === "response.output_item.done")?.[1].item as {
        content: Array<{ text: string }>;
      };
      assert.equal(item.content[0]?.text, "script via responses");
      assert.deepEqual(
        server.requestsFor("any").map((r) => r.dialect),
        ["chat", "anthropic", "responses"],
      );
    } finally {
      await server.close();
    }
  });
});

/**
 * The scripted model server on its own, over real HTTP: the SSE wire shape,
 * what it records, per-model queues, scripts, errors and client aborts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createGate, type ModelServer, startModelServer } from "./support/model-server.ts";

interface Chunk {
  choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number };
}

async function complete(server: ModelServer, body: Record<string, unknown>, signal?: AbortSignal) {
  const res = await fetch(`${server.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer x" },
    body: JSON.stringify({ stream: true, ...body }),
    signal,
  });
  const raw = await res.text();
  const events = raw
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
  const done = events.at(-1) === "[DONE]";
  const chunks = events.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e) as Chunk);
  let text = "";
  const calls: Array<{ id?: string; name?: string; args: string }> = [];
  let finish: string | null = null;
  for (const chunk of chunks) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (typeof choice.delta.content === "string") text += choice.delta.content;
    for (const call of (choice.delta.tool_calls ?? []) as Array<{
      index: number;
      id?: string;
      function: { name?: string; arguments?: string };
    }>) {
      const slot = calls[call.index] ?? { args: "" };
      calls[call.index] = slot;
      slot.id ??= call.id;
      slot.name ??= call.function.name;
      slot.args += call.function.arguments ?? "";
    }
    finish = choice.finish_reason ?? finish;
  }
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    raw,
    done,
    chunks,
    text,
    calls,
    finish,
  };
}

describe("scripted model server", () => {
  let server: ModelServer;
  before(async () => {
    server = await startModelServer();
  });
  after(async () => {
    await server?.close();
  });

  it("streams text and tool calls in chat-completions SSE chunks with usage and [DONE]", async () => {
    const long = "a fairly long answer that is streamed in several pieces";
    server.reply("m-stream", {
      text: long,
      toolCalls: [
        { name: "first", arguments: { a: 1, nested: { b: "two" } }, id: "call_1" },
        { name: "second", arguments: "{not json" },
      ],
      promptTokens: 4242,
    });
    const out = await complete(server, { model: "m-stream", messages: [{ role: "user", content: "go" }] });
    assert.equal(out.status, 200);
    assert.equal(out.contentType, "text/event-stream");
    assert.equal(out.done, true);
    assert.equal(out.text, long);
    assert.ok(
      out.chunks.filter((c) => typeof c.choices[0]?.delta.content === "string").length > 2,
      "text is split",
    );
    assert.deepEqual(out.calls, [
      { id: "call_1", name: "first", args: JSON.stringify({ a: 1, nested: { b: "two" } }) },
      { id: out.calls[1]?.id, name: "second", args: "{not json" },
    ]);
    assert.match(out.calls[1]?.id ?? "", /^call_/);
    assert.equal(out.finish, "tool_calls");
    assert.equal(out.chunks.at(-1)?.usage?.prompt_tokens, 4242);
  });

  it("records what the model saw: system, tools, tool results new and old", async () => {
    const since = server.mark();
    server.reply("m-record", "fine");
    const messages = [
      { role: "system", content: "you are scripted" },
      { role: "user", content: [{ type: "text", text: "first" }] },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "c1", type: "function", function: { name: "t1", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "c1", content: "old result" },
      { role: "user", content: "second" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ id: "c2", type: "function", function: { name: "t2", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "c2", content: [{ type: "text", text: "fresh result" }] },
    ];
    const tools = [
      { type: "function", function: { name: "t1", description: "tool one", parameters: { type: "object" } } },
    ];
    const out = await complete(server, { model: "m-record", messages, tools });
    assert.equal(out.text, "fine");
    assert.equal(out.finish, "stop");
    const req = await server.waitForRequest((r) => r.model === "m-record", { since });
    assert.equal(req.system, "you are scripted");
    assert.equal(req.lastUserText, "second");
    assert.deepEqual(
      req.tools.map((t) => t.name),
      ["t1"],
    );
    assert.deepEqual(req.toolResults, [
      { toolCallId: "c1", name: "t1", text: "old result" },
      { toolCallId: "c2", name: "t2", text: "fresh result" },
    ]);
    assert.deepEqual(req.newToolResults, [{ toolCallId: "c2", name: "t2", text: "fresh result" }]);
    assert.match(req.transcript, /tool: old result/);
    assert.equal(req.turn, 0);
  });

  it("takes queued steps per model first, then the script, then the default reply", async () => {
    server.reply("m-order", "queued one", (req) => ({ text: `queued fn saw ${req.lastUserText}` }));
    server.script = (req) => (req.model === "m-order" ? `script saw ${req.lastUserText}` : undefined);
    try {
      const ask = (content: string) =>
        complete(server, { model: "m-order", messages: [{ role: "user", content }] });
      assert.equal((await ask("1")).text, "queued one");
      assert.equal((await ask("2")).text, "queued fn saw 2");
      assert.equal((await ask("3")).text, "script saw 3");
      assert.equal(server.pending("m-order"), 0);
      const before = server.unscripted.length;
      const other = await complete(server, { model: "m-other", messages: [{ role: "user", content: "x" }] });
      assert.equal(other.text, "ok");
      assert.equal(server.unscripted.length, before + 1);
      assert.deepEqual(
        server.requestsFor("m-order").map((r) => r.turn),
        [0, 1, 2],
      );
    } finally {
      server.script = undefined;
    }
  });

  it("answers scripted HTTP errors, a throwing script, bad JSON and unknown routes", async () => {
    server.reply("m-err", { httpError: { status: 429, message: "slow down" } }, () => {
      throw new Error("script bug");
    });
    const limited = await complete(server, { model: "m-err", messages: [] });
    assert.equal(limited.status, 429);
    assert.match(limited.raw, /slow down/);
    const broken = await complete(server, { model: "m-err", messages: [] });
    assert.equal(broken.status, 500);
    assert.match(broken.raw, /script bug/);
    const bad = await fetch(`${server.baseUrl}/chat/completions`, { method: "POST", body: "{" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const missing = await fetch(`${server.baseUrl}/embeddings`, { method: "POST", body: "{}" });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });

  it("survives a client that aborts while a gated reply is pending", async () => {
    const gate = createGate();
    server.reply("m-gate", gate.step("never read"), "after the abort");
    const controller = new AbortController();
    const since = server.mark();
    const pending = complete(
      server,
      { model: "m-gate", messages: [{ role: "user", content: "slow" }] },
      controller.signal,
    );
    await server.waitForRequest((r) => r.model === "m-gate", { since });
    controller.abort();
    await assert.rejects(pending, { name: "AbortError" });
    gate.open();
    await gate.opened;
    const next = await complete(server, { model: "m-gate", messages: [{ role: "user", content: "again" }] });
    assert.equal(next.text, "after the abort");
  });

  it("waitForRequest gives up after its bound and lists what it saw", async () => {
    await assert.rejects(
      server.waitForRequest((r) => r.model === "nobody", { timeoutMs: 100 }),
      /no model request matched within 100 ms; saw \d+:/,
    );
  });
});

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
      const chat = await complete(server, { model: "any", messages: [{ role: "user", content: "1" }] });
      const anthropic = await namedEvents(
        await post(`${server.origin}/v1/messages`, { model: "any", stream: true, messages: [] }),
      );
      const responses = await namedEvents(
        await post(`${server.baseUrl}/responses`, { model: "any", stream: true, input: "3" }),
      );
      assert.equal(chat.text, "first");
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

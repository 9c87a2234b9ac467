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

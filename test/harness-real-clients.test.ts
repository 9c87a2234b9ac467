/**
 * The real-client harness on its own: the pinned Claude Code and Codex CLIs
 * (installed on first use) run against the scripted model server, call a tool
 * of a minimal stdio MCP server and print the scripted final answer. A failure
 * here is the harness's or a client's, not the bridge's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ChatRequest, type ModelServer, startModelServer } from "./support/model-server.ts";
import { describeRun, runClaude, runCodex } from "./support/real-client-runner.ts";
import { type RealClients, realClients } from "./support/real-clients.ts";

const STUB = join(import.meta.dirname, "fixtures", "mcp-stub-server.ts");
const servers = { stub: { command: process.execPath, args: [STUB] } };

const callEcho = { toolCalls: [{ name: "mcp__stub__echo", arguments: { text: "ping" } }] };
const answer = (req: ChatRequest) => `the tool said: ${req.newToolResults.map((r) => r.text).join(" | ")}`;

describe("real MCP clients against the scripted model server", () => {
  let clients: RealClients;
  let server: ModelServer;
  before(async () => {
    [clients, server] = await Promise.all([realClients(), startModelServer()]);
  });
  after(async () => {
    await server?.close();
  });

  it("claude -p calls the stdio server's tool and prints the scripted answer", async () => {
    server.reply("claude-echo", callEcho, answer);
    const run = await runClaude({
      clients,
      modelServer: server,
      model: "claude-echo",
      prompt: "echo ping",
      servers,
      allowedTools: ["mcp__stub__echo"],
    });
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.json?.result, "the tool said: echo: ping", describeRun(run));
    const reqs = server.requestsFor("claude-echo");
    assert.deepEqual(
      reqs.map((r) => r.dialect),
      ["anthropic", "anthropic"],
    );
    assert.ok(
      reqs[0]?.tools.some((t) => t.name === "mcp__stub__echo"),
      "the MCP tool is offered directly",
    );
  });

  it("codex exec calls the stdio server's tool and prints the scripted answer", async () => {
    server.reply("codex-echo", callEcho, answer);
    const run = await runCodex({
      clients,
      modelServer: server,
      model: "codex-echo",
      prompt: "echo ping",
      servers,
    });
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.lastMessage, /^the tool said: .*echo: ping$/s, describeRun(run));
    const call = run.events.find((e) => e.item?.type === "mcp_tool_call" && e.type === "item.completed");
    assert.equal(call?.item?.status, "completed", describeRun(run));
    assert.deepEqual(
      server.requestsFor("codex-echo").map((r) => r.dialect),
      ["responses", "responses"],
    );
  });
});

/**
 * Claude Code and Codex talk through the hub's /mcp URL with no local
 * bridge process: each client's only MCP server is the URL form of
 * docs/mcp.md (server entry "pi-coms", bearer token, agent named in the
 * query). Codex runs the worker loop; Claude Code lists the pool, asks the
 * Codex agent and prints its answer.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type HubProcess, HubWorld, waitFor } from "./support/hub-harness.ts";
import { type ModelServer, startModelServer } from "./support/model-server.ts";
import { describeRun, runClaude, runCodex } from "./support/real-client-runner.ts";
import { leadScript, receivedPrompt, toolsOf, workerScript } from "./support/real-client-scripts.ts";
import { type RealClients, realClients } from "./support/real-clients.ts";

const ENTRY = "pi-coms";
const QUESTION = "Is the session table's eviction safe under concurrent writes?";
const ANSWER = "Codex agent: yes, eviction takes the table lock; writes wait for it.";
const WORKER_PROMPT =
  "You are a worker in a pi-coms pool. Call coms_receive; answer the prompt with coms_reply and its msg_id; then stop.";

describe("Claude Code and Codex through the hub's /mcp URL", () => {
  let clients: RealClients;
  let server: ModelServer;
  let world: HubWorld;
  let hub: HubProcess;

  before(async () => {
    world = new HubWorld();
    [clients, server, hub] = await Promise.all([realClients(), startModelServer(), world.startHub()]);
  });
  after(async () => {
    await world?.dispose();
    await server?.close();
  });

  it("claude -p asks the Codex agent and prints its answer; no bridge process runs", async () => {
    const codexTools = toolsOf(ENTRY, "codex");
    const claudeTools = toolsOf(ENTRY, "claude");
    server.script = (req) =>
      req.model === "codex-agent"
        ? workerScript(codexTools, ANSWER)(req)
        : req.model === "claude-agent"
          ? leadScript(claudeTools, "codex-agent", QUESTION)(req)
          : undefined;
    const url = (query: string) => ({ [ENTRY]: { url: `${hub.url}/mcp?${query}`, bearerToken: hub.token } });

    const codex = runCodex({
      clients,
      modelServer: server,
      model: "codex-agent",
      prompt: WORKER_PROMPT,
      servers: url("name=codex-agent&purpose=answers%20questions"),
    });
    const observer = await world.connect(hub, "observer");
    await Promise.race([
      waitFor(async () => (await observer.list()).some((p) => p.name === "codex-agent"), {
        what: "codex-agent in the hub's pool",
        timeoutMs: 60_000,
        intervalMs: 100,
      }),
      codex.then((run) => {
        throw new Error(`codex exited before joining the pool: ${describeRun(run)}`);
      }),
    ]);

    const claude = await runClaude({
      clients,
      modelServer: server,
      model: "claude-agent",
      prompt: "Ask the Codex agent whether eviction is safe.",
      servers: url("name=claude-agent"),
      allowedTools: ["coms_list", "coms_send", "coms_await"].map(claudeTools),
    });
    assert.equal(claude.code, 0, describeRun(claude));
    assert.match(claude.json?.result ?? "", /^codex-agent answered: /, describeRun(claude));
    assert.ok(claude.json?.result?.includes(ANSWER), describeRun(claude));
    const listed = server
      .requestsFor("claude-agent")
      .flatMap((r) => r.newToolResults)
      .find((r) => r.name === claudeTools("coms_list"));
    assert.match(listed?.text ?? "", /codex-agent: answers questions/, listed?.text);

    const run = await codex;
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.lastMessage, /^Replied: /, describeRun(run));
    const received = receivedPrompt(server.requestsFor("codex-agent"), codexTools);
    assert.match(received, /<peer-prompt [^>]*msg_id="[0-9A-Z]{26}"/, received);
    assert.match(received, /from the peer agent "claude-agent"/, received);
    assert.ok(received.includes(QUESTION), received);
  });
});

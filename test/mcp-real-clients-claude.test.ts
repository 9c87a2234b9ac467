/**
 * The real Claude Code CLI (`claude -p`, pinned in test/clients) joins the
 * P2P pool through `pi-coms mcp`, started from its --mcp-config exactly as
 * docs/mcp.md says: it lists the pool, asks a real pi reviewer running the
 * plugin, and prints the reviewer's answer. The reviewer's model saw the
 * prompt fenced as peer text from "claude-code" (the bridge names itself
 * after the MCP client).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";
import { describeRun, runClaude } from "./support/real-client-runner.ts";
import { bridgeServer, call, forModel, fresh, leadScript, tool } from "./support/real-client-scripts.ts";
import { type RealClients, realClients } from "./support/real-clients.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const QUESTION = "Please review the retry loop in fetch.ts: is the backoff bounded?";
const ANSWER = "Reviewed: the backoff doubles up to a 30 s cap, so it is bounded. Ship it.";

describe("Claude Code over MCP asks a pi reviewer over P2P", () => {
  let world: PiWorld;
  let reviewer: PiProcess;
  let clients: RealClients;

  before(async () => {
    [clients, world] = await Promise.all([realClients(), createPiWorld({ extensions: [PLUGIN] })]);
    reviewer = await world.startPi({ name: "reviewer" });
    await reviewer.prompt('/coms start --name reviewer --purpose "reviews code"');
  });
  afterEach((t) => dumpIfFailed(t, reviewer));
  after(async () => {
    await world?.close();
  });

  it("claude -p lists the pool, asks the reviewer and prints its answer", async () => {
    const server = world.modelServer;
    server.script = forModel("claude-lead", leadScript(tool, "reviewer", QUESTION));
    let peerPrompt = "";
    server.reply("reviewer", (req) => {
      peerPrompt = req.lastUserText;
      return ANSWER;
    });
    const run = await runClaude({
      clients,
      modelServer: server,
      model: "claude-lead",
      prompt: "Ask the reviewer whether the retry loop's backoff is bounded.",
      // In the project directory, as a user would start it: the bridge finds the same pool as pi there.
      cwd: world.project,
      servers: bridgeServer([], { PI_COMS_DIR: world.comsDir, PI_HARNESS_RUN: world.marker }),
      allowedTools: ["coms_list", "coms_send", "coms_await"].map(tool),
    });
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.json?.is_error, false, describeRun(run));
    assert.match(run.json?.result ?? "", /^reviewer answered: /, describeRun(run));
    assert.ok(run.json?.result?.includes(ANSWER), describeRun(run));

    const seen = server.requestsFor("claude-lead").flatMap((r) => r.newToolResults);
    const listed = seen.find((r) => r.name === tool("coms_list"))?.text ?? "";
    assert.match(listed, /reviewer: reviews code/, listed);

    assert.match(peerPrompt, /<peer-prompt [^>]*msg_id="[0-9A-Z]{26}"/, peerPrompt);
    assert.match(peerPrompt, /from the peer agent "claude-code"/, peerPrompt);
    assert.ok(peerPrompt.includes(QUESTION), peerPrompt);
  });

  it("a receive outlasting the client's tool timeout comes back 'no prompt yet' within it", async () => {
    const server = world.modelServer;
    server.reply(
      "claude-listener",
      call("coms_receive", { timeout_ms: 600_000 }),
      (req) => fresh(req)?.text ?? "",
    );
    const run = await runClaude({
      clients,
      modelServer: server,
      model: "claude-listener",
      prompt: "Wait for a prompt from a peer.",
      cwd: world.project,
      // The bridge's bound, well under Claude Code's limit for one tool call.
      servers: bridgeServer(["--name", "listener"], {
        PI_COMS_DIR: world.comsDir,
        PI_COMS_MCP_MAX_WAIT_MS: "1500",
        PI_HARNESS_RUN: world.marker,
      }),
      toolTimeoutMs: 8000,
      allowedTools: [tool("coms_receive")],
    });
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.json?.result ?? "", /^No peer prompt yet .*call coms_receive again/i, describeRun(run));
  });
});

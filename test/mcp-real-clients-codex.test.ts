/**
 * The real Codex CLI (`codex exec`, pinned in test/clients) works as a pool
 * worker over the hub: its config.toml starts `pi-coms mcp --hub` as
 * docs/mcp.md says, and it runs the worker prompt (wait for a prompt with
 * the receive tool, answer it with the reply tool). A real pi manager with
 * the plugin sends it a question over /coms-net and its await returns
 * Codex's answer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import type { ScriptedReply } from "./support/model-server.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";
import { describeRun, runCodex } from "./support/real-client-runner.ts";
import {
  bridgeServer,
  forModel,
  fresh,
  msgIdIn,
  receivedPrompt,
  tool,
  workerScript,
} from "./support/real-client-scripts.ts";
import { type RealClients, realClients } from "./support/real-clients.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const WIDGET = "pi-coms-pool";
const QUESTION = "Which call sites of retry() ignore its attempt cap?";
const ANSWER = "Codex worker: two call sites (sync.ts:41, upload.ts:88) pass attempts: Infinity.";
const WORKER_PROMPT =
  "You are a worker in a pool of coding agents. Call coms_receive to wait for a prompt; answer it with coms_reply and its msg_id; then stop.";

const piCall = (name: string, args: Record<string, unknown>): ScriptedReply => ({
  toolCalls: [{ name, arguments: args }],
});

describe("a pi manager asks a Codex worker over the hub", () => {
  let world: PiWorld;
  let manager: PiProcess;
  let clients: RealClients;

  before(async () => {
    [clients, world] = await Promise.all([realClients(), createPiWorld({ extensions: [PLUGIN] })]);
    manager = await world.startPi({ name: "manager" });
    // Starts the project's local hub; the worker's bridge finds it the same way (`--hub` without a URL).
    const started = await manager.notifiedBy('/coms-net start --name manager --purpose "directs the work"');
    assert.match(started, /coms-net active as manager/);
  });
  afterEach((t) => dumpIfFailed(t, manager));
  after(async () => {
    await world?.close();
  });

  it("codex exec answers the manager's prompt; the manager's await returns it", async () => {
    const server = world.modelServer;
    server.script = forModel("codex-worker", workerScript(tool, ANSWER));
    const codex = runCodex({
      clients,
      modelServer: server,
      model: "codex-worker",
      prompt: WORKER_PROMPT,
      cwd: world.project,
      servers: bridgeServer(["--hub", "--name", "codex-worker", "--purpose", "answers code questions"], {
        PI_COMS_NET_DIR: world.comsNetDir,
        PI_HARNESS_RUN: world.marker,
      }),
    });
    // The worker is in the pool once the manager's widget shows it.
    await Promise.race([
      manager.waitForWidget(WIDGET, (lines) => lines.some((l) => l.includes("codex-worker")), {
        timeoutMs: 60_000,
      }),
      codex.then((run) => {
        throw new Error(`codex exited before joining the pool: ${describeRun(run)}`);
      }),
    ]);

    server.reply(
      "manager",
      piCall("coms_net_send", { to: "codex-worker", prompt: QUESTION }),
      (req) => piCall("coms_net_await", { msg_id: msgIdIn(fresh(req)?.text ?? ""), timeout_ms: 60_000 }),
      (req) => `manager heard: ${fresh(req)?.text}`,
    );
    const since = manager.mark();
    await manager.promptAndWait("ask the codex worker about retry()", { timeoutMs: 90_000 });
    const awaited = manager.toolResults({ since, toolName: "coms_net_await" });
    assert.equal(awaited.length, 1);
    assert.match(awaited[0]?.text ?? "", /Reply from codex-worker/);
    assert.ok(awaited[0]?.text.includes(ANSWER), awaited[0]?.text);

    const run = await codex;
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.lastMessage, /^Replied: /, describeRun(run));
    const received = receivedPrompt(server.requestsFor("codex-worker"), tool);
    assert.match(received, /<peer-prompt [^>]*msg_id="[0-9A-Z]{26}"/, received);
    assert.match(received, /from the peer agent "manager" \(purpose: directs the work\)/, received);
    assert.ok(received.includes(QUESTION), received);
  });
});

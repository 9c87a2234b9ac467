/**
 * A chain of three pi sessions plus a script: the manager asks the coder,
 * the coder delegates to a tester and waits. An unrelated prompt that cuts
 * the coder's wait short is answered at once by the coder's next message,
 * and the coder keeps waiting, so the manager still gets the complete answer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { projectFromCwd } from "../lib/project.ts";
import { type P2PNode, startP2P } from "../peer/node.ts";
import type { ChatRequest, ScriptedReply } from "./support/model-server.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const MSG_ID = /msg_id ([0-9A-HJKMNP-TV-Z]{26})/;

const call = (name: string, args: Record<string, unknown>): ScriptedReply => ({
  toolCalls: [{ name, arguments: args }],
});
function sentId(req: ChatRequest): string {
  const results = req.toolResults.filter((r) => r.name === "coms_send");
  const id = MSG_ID.exec(results[results.length - 1]?.text ?? "")?.[1];
  if (!id) throw new Error(`no msg_id in ${JSON.stringify(req.toolResults)}`);
  return id;
}

describe("a delegation chain in real pi", () => {
  let world: PiWorld;
  let manager: PiProcess;
  let coder: PiProcess;
  let tester: PiProcess;
  let outsider: P2PNode | undefined;

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN] });
    const start = (name: string) => world.startPi({ name, args: ["--name", name, "--coms"] });
    [manager, coder, tester] = await Promise.all([start("manager"), start("coder"), start("tester")]);
    outsider = await startP2P({
      name: "outsider",
      project: projectFromCwd(world.project),
      explicit: true,
      env: { ...process.env, PI_COMS_DIR: world.comsDir },
    });
  });
  afterEach((t) => dumpIfFailed(t, manager, coder, tester));
  after(async () => {
    await outsider?.close();
    await world?.close();
  });

  it("an interrupting prompt is answered at once and the chain still completes", async () => {
    const server = world.modelServer;
    let openTester = () => {};
    const testerGate = new Promise<void>((resolve) => {
      openTester = resolve;
    });
    server.reply("tester", async () => {
      await testerGate;
      return "tester: all 42 tests pass";
    });
    server.reply(
      "coder",
      call("coms_send", { to: "tester", prompt: "Run the tests please." }),
      (req) => call("coms_await", { msg_id: sentId(req), timeout_ms: 30_000 }),
      (req) => {
        assert.match(req.newToolResults[0]?.text ?? "", /^Stopped waiting: a prompt from "outsider"/);
        assert.match(req.lastUserText, /unrelated: which branch\?/);
        return {
          text: "coder to outsider: branch main",
          toolCalls: [{ name: "coms_await", arguments: { msg_id: sentId(req), timeout_ms: 30_000 } }],
        };
      },
      (req) => `coder to manager: review done; ${req.newToolResults[0]?.text.split("\n")[1]}`,
    );
    server.reply(
      "manager",
      call("coms_send", { to: "coder", prompt: "Review the patch and have it tested." }),
      (req) => call("coms_await", { msg_id: sentId(req), timeout_ms: 30_000 }),
      "manager: thanks",
    );
    const since = manager.mark();
    const coderSince = coder.mark();
    const managerRun = manager.promptAndWait("get the patch reviewed", { timeoutMs: 40_000 });
    await coder.waitFor((r) => r.type === "tool_execution_start" && r.toolName === "coms_await", {
      since: coderSince,
    });

    assert.ok(outsider);
    const ack = await outsider.send({ to: "coder", prompt: "unrelated: which branch?" });
    const outsiderReply = await outsider.await(ack.msg_id, { timeoutMs: 20_000 });
    assert.equal(outsiderReply.state, "reply", JSON.stringify(outsiderReply));
    assert.equal(outsiderReply.state === "reply" && outsiderReply.text, "coder to outsider: branch main");

    openTester();
    await managerRun;
    const managerAwait = manager.toolResults({ since, toolName: "coms_await" })[0]?.text ?? "";
    assert.match(managerAwait, /coder to manager: review done; tester: all 42 tests pass/);

    const injected = tester.records.find(
      (r) => r.type === "message_end" && (r.message as { customType?: string }).customType === "coms-inbound",
    );
    const details = (injected?.message as { details?: { items?: Array<{ hops: number }> } } | undefined)
      ?.details;
    const hops = details?.items?.[0]?.hops;
    assert.equal(hops, 2, "the delegated message continues the manager's hop count");
    const pool = coder.widget("pi-coms-pool") ?? [];
    assert.ok(
      pool.some((l) => l.includes("● tester")),
      pool.join("\n"),
    );
    assert.ok(!pool.some((l) => l.includes("outsider")), "explicit agents stay out of the pool widget");
  });
});

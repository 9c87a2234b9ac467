/**
 * The plugin over the networked hub in real pi: /coms-net start auto-starts
 * a hub, a second session finds it, the coms_net_* tools carry a prompt and
 * its reply, both systems run side by side, /reload keeps the connection,
 * and only the session that started the hub stops it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { findHub } from "../hub/client/discovery.ts";
import { projectFromCwd } from "../lib/project.ts";
import type { ChatRequest, ScriptedReply } from "./support/model-server.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");
const WIDGET = "pi-coms-pool";
const MSG_ID = /msg_id ([0-9A-HJKMNP-TV-Z]{26})/;

const call = (name: string, args: Record<string, unknown>): ScriptedReply => ({
  toolCalls: [{ name, arguments: args }],
});
function sentId(req: ChatRequest, tool: string): string {
  const results = req.toolResults.filter((r) => r.name === tool);
  const id = MSG_ID.exec(results[results.length - 1]?.text ?? "")?.[1];
  if (!id) throw new Error(`no msg_id in ${tool} results: ${JSON.stringify(req.toolResults)}`);
  return id;
}

describe("plugin over the hub in real pi", () => {
  let world: PiWorld;
  let manager: PiProcess;
  let coder: PiProcess;
  const hubEnv = () => ({ ...process.env, PI_COMS_NET_DIR: world.comsNetDir });

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN, RELOAD], env: { PI_COMS_PING_INTERVAL_MS: "500" } });
    [manager, coder] = await Promise.all([
      world.startPi({ name: "manager" }),
      world.startPi({ name: "coder" }),
    ]);
  });
  afterEach(async (t) => {
    dumpIfFailed(t, manager, coder);
    // The subtests are one scenario on the same sessions: each ends with both idle, so the tail of a
    // turn never meets the next subtest's prompt.
    await Promise.all([manager, coder].map((pi) => pi.idle()));
  });
  after(async () => {
    await world?.close();
  });

  const notified = (pi: PiProcess, command: string) => pi.notifiedBy(command);

  async function roundTrip(prefix: "coms" | "coms_net", answer: string): Promise<string> {
    const server = world.modelServer;
    server.reply("coder", answer);
    server.reply(
      "manager",
      call(`${prefix}_send`, { to: "coder", prompt: `Question over ${prefix}` }),
      (req) => call(`${prefix}_await`, { msg_id: sentId(req, `${prefix}_send`), timeout_ms: 20_000 }),
      "thanks",
    );
    const since = manager.mark();
    await manager.promptAndWait(`ask over ${prefix}`, { timeoutMs: 40_000 });
    return manager.toolResults({ since, toolName: `${prefix}_await` })[0]?.text ?? "";
  }

  it("/coms-net start auto-starts a hub; a second session joins it", async () => {
    const first = await notified(
      manager,
      '/coms-net start --name manager --purpose "reviews" --color #00aa00',
    );
    assert.match(first, /^info: coms-net active as manager; started the hub at http:\/\/127\.0\.0\.1:\d+/);
    const second = await notified(coder, "/coms-net start --name coder");
    assert.match(
      second,
      /coms-net active as coder; joined the hub at http:\/\/127\.0\.0\.1:\d+; 1 peer\(s\): manager/,
    );
    assert.match(await notified(manager, "/coms-net status"), /started by this session: yes/);
    assert.match(
      await notified(coder, "/coms-net status"),
      /hub http:\/\/127\.0\.0\.1:\d+; started by this session: no/,
    );
    await manager.waitForWidget(WIDGET, (l) => l.some((x) => x.includes("● coder")));
  });

  it("coms_net_send and coms_net_await carry the prompt and the coder's reply", async () => {
    const text = await roundTrip("coms_net", "Reviewed over the hub.");
    assert.match(text, /^Reply from coder to [0-9A-Z]{26}:\nReviewed over the hub\./);
    const request = world.modelServer.requestsFor("coder").at(-1);
    assert.match(
      request?.lastUserText ?? "",
      /from the peer agent "manager" \(purpose: reviews\) arrived over networked/,
    );
  });

  it("both systems run side by side in one session", async () => {
    await manager.prompt("/coms start --name manager");
    await coder.prompt("/coms start --name coder");
    const lines = await manager.waitForWidget(
      WIDGET,
      (l) => l.filter((x) => x.includes("● coder")).length === 2,
    );
    assert.ok(
      lines.some((l) => l.startsWith("coms (P2P)")) && lines.some((l) => l.startsWith("coms-net http://")),
    );
    assert.match(await roundTrip("coms", "P2P still works."), /P2P still works\./);
    assert.match(await roundTrip("coms_net", "Hub still works."), /Hub still works\./);
    const tools =
      world.modelServer
        .requestsFor("manager")
        .at(-1)
        ?.tools.map((t) => t.name) ?? [];
    for (const name of ["coms_list", "coms_send", "coms_get", "coms_await"])
      assert.ok(tools.includes(name) && tools.includes(name.replace("coms_", "coms_net_")), tools.join(","));
    assert.match(manager.status("pi-coms") ?? "", /coms: manager · coms-net: manager \(hub host\)/);
  });

  it("/reload keeps the hub connection and the name", async () => {
    await manager.prompt("/harness-reload");
    assert.match(
      await notified(manager, "/coms-net status"),
      /active as manager .*started by this session: yes/,
    );
    assert.match(await roundTrip("coms_net", "After reload."), /After reload\./);
  });

  it("disconnect leaves the hub running; only its starter stops it", async () => {
    const project = projectFromCwd(world.project);
    assert.match(await notified(coder, "/coms-net disconnect"), /disconnected; the hub keeps running/);
    await manager.waitForWidget(WIDGET, (l) => l.filter((x) => x.includes("● coder")).length === 1);
    assert.ok(await findHub(project, hubEnv()), "hub still up after a disconnect");
    assert.match(await notified(coder, "/coms-net stop"), /coms-net is not active/);
    assert.ok(await findHub(project, hubEnv()), "a session that did not start the hub cannot stop it");
    assert.match(await notified(manager, "/coms-net stop"), /coms-net stopped: .*hub for project .* stopped/);
    assert.equal(await findHub(project, hubEnv()), null);
    const tools =
      world.modelServer
        .requestsFor("manager")
        .at(-1)
        ?.tools.map((t) => t.name) ?? [];
    assert.ok(tools.includes("coms_send"));
    world.modelServer.reply("manager", "ok");
    await manager.promptAndWait("anything");
    const after =
      world.modelServer
        .requestsFor("manager")
        .at(-1)
        ?.tools.map((t) => t.name) ?? [];
    assert.ok(!after.some((t) => t.startsWith("coms_net_")) && after.includes("coms_send"), after.join(","));
  });
});

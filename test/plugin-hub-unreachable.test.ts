/**
 * The plugin in real pi tells its user when the hub cannot be reached: a
 * hub process stopped under a connected session turns the status line, the
 * pool widget and `/coms-net status` to "unreachable since …", and the same
 * hub started again on its port and directory turns them back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { projectFromCwd } from "../lib/project.ts";
import { type HubProcess, HubWorld, kill9, waitFor } from "./support/hub-harness.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const WIDGET = "pi-coms-pool";
const STATUS = "pi-coms";

describe("plugin: a hub that stops answering", () => {
  let world: PiWorld;
  let hubs: HubWorld;
  let pi: PiProcess;
  let hub: HubProcess;
  let project: string;
  const startHub = (port: number) => hubs.startHub({ project, args: ["--port", String(port)] });

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN], env: { PI_COMS_NET_HEARTBEAT_MS: "300" } });
    // The hub runs in the pi world's directory, so the session finds it by discovery.
    hubs = new HubWorld({ PI_COMS_NET_DIR: world.comsNetDir, PI_COMS_NET_HEARTBEAT_MS: "300" });
    project = projectFromCwd(world.project);
    hub = await startHub(0);
    pi = await world.startPi({ name: "watcher" });
  });
  afterEach((t) => dumpIfFailed(t, pi));
  after(async () => {
    await world?.close();
    await hubs?.dispose();
  });

  const notified = (command: string) => pi.notifiedBy(command);

  it("status line, widget and /coms-net status say unreachable (and since when), then recover", async () => {
    assert.match(await notified("/coms-net connect --name watcher"), /coms-net active as watcher/);
    await pi.waitForWidget(WIDGET, (l) => l.some((x) => x.startsWith("coms-net http://")));
    assert.match(await notified("/coms-net status"), /Hub connected/);

    await kill9(hub);
    const down = await pi.waitForWidget(
      WIDGET,
      (l) => l.some((x) => /HUB UNREACHABLE SINCE \d\d:\d\d:\d\d/.test(x)),
      {
        timeoutMs: 20_000,
      },
    );
    assert.ok(
      down.some((x) => x.includes("peers as last seen")),
      down.join("\n"),
    );
    await waitFor(() => /hub unreachable since \d\d:\d\d:\d\d/.test(pi.status(STATUS) ?? ""), {
      what: "the status line to say unreachable",
    });
    const status = await notified("/coms-net status");
    assert.match(status, /HUB UNREACHABLE since \d\d:\d\d:\d\d \(.+\); last answer \d\d:\d\d:\d\d; retrying/);

    hub = await startHub(hub.port);
    const back = await pi.waitForWidget(
      WIDGET,
      (l) => l.some((x) => x.startsWith("coms-net http://")) && !l.some((x) => x.includes("UNREACHABLE")),
      {
        timeoutMs: 30_000,
      },
    );
    assert.ok(back.length > 0);
    await waitFor(() => !/unreachable/.test(pi.status(STATUS) ?? "unreachable"), {
      what: "the status line to recover",
    });
    assert.match(await notified("/coms-net status"), /Hub connected/);
  });
});

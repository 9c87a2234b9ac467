/**
 * Names in real pi over RPC: a session started without a name gets one
 * generated name ("calm-falcon"), the same on P2P and the hub, and keeps it
 * across stop/start and /reload. A peer that leaves on purpose leaves the
 * others' pool widget at once, on both systems.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");
const WIDGET = "pi-coms-pool";
const GENERATED = /^[a-z]+-[a-z]+$/;

/** The name a start or status notice says this session is active as. */
function activeAs(notice: string): string {
  const name = /active as ([^\s;]+)/.exec(notice)?.[1];
  assert.ok(name, notice);
  return name;
}

describe("agent names in real pi", () => {
  let world: PiWorld;
  let unnamed: PiProcess;
  let leaver: PiProcess;

  before(async () => {
    world = await createPiWorld({
      extensions: [PLUGIN, RELOAD],
      env: { PI_COMS_PING_INTERVAL_MS: "300", PI_COMS_NET_HEARTBEAT_MS: "300" },
    });
    [unnamed, leaver] = await Promise.all([
      world.startPi({ name: "unnamed" }),
      world.startPi({ name: "leaver" }),
    ]);
  });
  afterEach((t) => dumpIfFailed(t, unnamed, leaver));
  after(async () => {
    await world?.close();
  });

  it("one generated name for both systems, kept across stop/start and /reload", async () => {
    const name = activeAs(await unnamed.notifiedBy("/coms start"));
    assert.match(name, GENERATED);
    assert.equal(activeAs(await unnamed.notifiedBy("/coms-net start")), name, "the hub uses the same name");

    await unnamed.prompt("/coms stop");
    await unnamed.prompt("/coms-net stop");
    assert.equal(activeAs(await unnamed.notifiedBy("/coms start")), name, "P2P after stop/start");
    assert.equal(activeAs(await unnamed.notifiedBy("/coms-net start")), name, "hub after stop/start");

    await unnamed.prompt("/coms stop");
    await unnamed.prompt("/coms-net stop");
    await unnamed.prompt("/harness-reload");
    assert.equal(activeAs(await unnamed.notifiedBy("/coms-net start")), name, "hub after /reload");
    assert.equal(activeAs(await unnamed.notifiedBy("/coms start")), name, "P2P after /reload");
  });

  it("a peer that stops leaves the others' widget on P2P and on the hub", async () => {
    await leaver.prompt("/coms start --name leaver");
    await leaver.prompt("/coms-net connect --name leaver");
    const hubHeader = (l: string) => l.startsWith("coms-net ");
    const sections = (lines: string[]) => {
      const at = lines.findIndex(hubHeader);
      return { p2p: lines.slice(0, at), hub: lines.slice(at) };
    };
    await unnamed.waitForWidget(WIDGET, (lines) => {
      const { p2p, hub } = sections(lines);
      return p2p.some((l) => l.includes("● leaver")) && hub.some((l) => l.includes("● leaver"));
    });

    await leaver.prompt("/coms stop");
    await unnamed.waitForWidget(WIDGET, (lines) => {
      const { p2p, hub } = sections(lines);
      return !p2p.some((l) => l.includes("leaver")) && hub.some((l) => l.includes("● leaver"));
    });
    await leaver.prompt("/coms-net disconnect");
    const lines = await unnamed.waitForWidget(WIDGET, (lines) => !lines.some((l) => l.includes("leaver")));
    assert.ok(lines.some(hubHeader), lines.join("\n"));
  });

  it("a hub host that stops its hub is not listed as last seen by those left behind", async () => {
    const host = activeAs(await unnamed.notifiedBy("/coms-net status"));
    await leaver.prompt("/coms-net connect --name leaver");
    await leaver.waitForWidget(WIDGET, (lines) => lines.some((l) => l.includes(`● ${host}`)));
    await unnamed.prompt("/coms-net stop");
    const down = await leaver.waitForWidget(WIDGET, (lines) => lines.some((l) => l.includes("UNREACHABLE")), {
      timeoutMs: 20_000,
    });
    assert.ok(!down.some((l) => l.includes(host)), down.join("\n"));
    await leaver.prompt("/coms-net disconnect");
  });
});

/**
 * Identity from the pi command line, and what quitting pi leaves behind:
 * the P2P socket and registry entry are removed, the networked side
 * disconnects, and a hub this session started keeps running (only
 * `/coms-net stop` shuts it down).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { findHub } from "../hub/client/discovery.ts";
import { projectFromCwd } from "../lib/project.ts";
import { entryPath } from "../peer/paths.ts";
import {
  createPiWorld,
  dumpIfFailed,
  type PiProcess,
  type PiWorld,
  piCliPath,
} from "./support/pi-harness.ts";

const REPO = join(import.meta.dirname, "..");
const PLUGIN = join(REPO, "plugin", "index.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");
const WIDGET = "pi-coms-pool";

describe("command-line identity and shutdown in real pi", () => {
  let world: PiWorld;
  let watcher: PiProcess;
  let flagged: PiProcess | undefined;
  const env = () => ({ ...process.env, PI_COMS_DIR: world.comsDir, PI_COMS_NET_DIR: world.comsNetDir });

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN], env: { PI_COMS_PING_INTERVAL_MS: "300" } });
    watcher = await world.startPi({ name: "watcher" });
    await watcher.prompt("/coms start --name watcher");
  });
  afterEach((t) => dumpIfFailed(t, watcher, flagged));
  after(async () => {
    await world?.close();
  });

  it("pi --coms --coms-net with identity flags starts both systems at startup", async () => {
    flagged = await world.startPi({
      name: "flagged",
      args: ["--name", "tester", "--purpose", "runs the tests", "--color", "#aa00ff", "--coms", "--coms-net"],
    });
    const since = flagged.mark();
    await flagged.prompt("/coms status");
    await flagged.prompt("/coms-net status");
    const notes = flagged.notifications({ since }).map((n) => n.message);
    assert.match(notes[0] ?? "", /coms \(P2P\): active as tester in project/);
    assert.match(notes[1] ?? "", /coms-net: active as tester .*started by this session: yes/);
    const project = projectFromCwd(world.project);
    const entry = JSON.parse(readFileSync(entryPath(project, "tester", env()), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(entry.purpose, "runs the tests");
    assert.equal(entry.color, "#aa00ff");
    assert.ok(existsSync(String(entry.socket)), "socket exists while running");
    await watcher.prompt("/coms-net connect --name watcher");
    await watcher.waitForWidget(WIDGET, (l) => l.filter((x) => x.includes("● tester")).length === 2);
  });

  it("quitting removes the P2P socket and entry and leaves the hub it started running", async () => {
    assert.ok(flagged);
    const project = projectFromCwd(world.project);
    const entryFile = entryPath(project, "tester", env());
    const socket = String((JSON.parse(readFileSync(entryFile, "utf8")) as { socket: string }).socket);
    await flagged.stop();
    assert.equal(existsSync(entryFile), false, "registry entry removed");
    assert.equal(existsSync(socket), false, "socket removed");
    assert.ok(await findHub(project, env()), "quitting does not stop the hub");
    await watcher.prompt("/coms");
    await watcher.prompt("/coms-net");
    const lines = await watcher.waitForWidget(WIDGET, (l) => !l.some((x) => x.includes("● tester")));
    assert.ok(
      lines.some((l) => l.startsWith("coms-net http://")),
      "the watcher is still on the hub",
    );
  });
});

describe("installing the package into pi", () => {
  let world: PiWorld;
  let pi: PiProcess;

  before(async () => {
    world = await createPiWorld({ extensions: [RELOAD] });
    pi = await world.startPi({ name: "fresh" });
  });
  afterEach((t) => dumpIfFailed(t, pi));
  after(async () => {
    await world?.close();
  });

  it("pi install <package dir> adds /coms, /coms-net and the generator through the package manifest", async () => {
    const names = async () =>
      (await pi.request<{ commands: Array<{ name: string }> }>({ type: "get_commands" })).commands.map(
        (c) => c.name,
      );
    assert.ok(!(await names()).includes("coms"), "not there before installing");
    execFileSync(process.execPath, [piCliPath(), "install", REPO], {
      env: pi.sandbox.env,
      cwd: pi.cwd,
      stdio: "pipe",
    });
    await pi.prompt("/harness-reload");
    const after = await names();
    for (const name of ["coms", "coms-net", "create-coms-feature-manager"])
      assert.ok(after.includes(name), after.join(","));
  });
});

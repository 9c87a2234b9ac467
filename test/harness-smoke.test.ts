/**
 * Proves the real-pi harness with a throwaway extension: a scripted model
 * drives a real pi over RPC, a tool result reaches the next model request,
 * commands, widgets, dialogs, abort and reload work over RPC, stop() leaves
 * nothing behind, and the interactive TUI in tmux shows the widget.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { type ModelServer, startModelServer } from "./support/model-server.ts";
import {
  processAlive as alive,
  createPiWorld,
  dumpIfFailed,
  type PiProcess,
  type PiWorld,
  pidsWithMarker,
  startPi,
} from "./support/pi-harness.ts";
import { startPiInTmux, type TmuxPi, tmuxMissing } from "./support/tmux.ts";

const PROBE = join(import.meta.dirname, "fixtures", "probe-extension.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");

describe("real pi over RPC", () => {
  let world: PiWorld;
  let alice: PiProcess;
  let bob: PiProcess;

  before(async () => {
    world = await createPiWorld({ extensions: [PROBE, RELOAD] });
    [alice, bob] = await Promise.all([world.startPi({ name: "alice" }), world.startPi({ name: "bob" })]);
  });
  afterEach(async (t) => {
    dumpIfFailed(t, alice, bob);
    // The subtests share both sessions: each ends with both idle, so no turn runs into the next one.
    await Promise.all([alice, bob].map((pi) => pi.idle()));
  });
  after(async () => {
    await world?.close();
  });

  it("a scripted tool call runs in pi and its result reaches the next model request", async () => {
    const server = world.modelServer;
    server.reply(
      "alice",
      { text: "calling", toolCalls: [{ name: "probe_echo", arguments: { word: "kiwi" } }] },
      (req) => `model saw ${req.newToolResults.map((r) => `${r.name}=${r.text}`).join(",")}`,
    );
    const since = alice.mark();
    const { text } = await alice.promptAndWait("please echo kiwi");

    assert.equal(text, "model saw probe_echo=probe-echo:kiwi");
    const [first, second] = server.requestsFor("alice").slice(-2);
    assert.equal(first?.lastUserText, "please echo kiwi");
    assert.ok(
      first?.tools.some((t) => t.name === "probe_echo"),
      "the tool is offered to the model",
    );
    assert.deepEqual(
      second?.newToolResults.map((r) => r.text),
      ["probe-echo:kiwi"],
    );
    assert.deepEqual(alice.toolResults({ since }), [
      {
        toolName: "probe_echo",
        args: { word: "kiwi" },
        text: "probe-echo:kiwi",
        details: { echoes: 1 },
        isError: false,
      },
    ]);
    assert.deepEqual(alice.widget("probe"), ["probe widget: 1 echo(es)", "last word: kiwi"]);
    assert.equal(server.requestsFor("bob").length, 0, "bob's model id saw none of alice's turns");
  });

  it("several tool calls in one reply all run and all results come back", async () => {
    const server = world.modelServer;
    server.reply(
      "bob",
      {
        toolCalls: [
          { name: "probe_echo", arguments: { word: "one" } },
          { name: "probe_echo", arguments: { word: "two" } },
          { name: "probe_echo", arguments: "{broken json" },
        ],
      },
      (req) => ({ text: req.newToolResults.map((r) => r.text.split("\n")[0]).join(" | ") }),
    );
    const since = bob.mark();
    const { text } = await bob.promptAndWait("echo twice");
    const results = bob.toolResults({ since, toolName: "probe_echo" });
    // Calls run in parallel, so results finish in any order.
    assert.deepEqual(
      results
        .filter((r) => !r.isError)
        .map((r) => r.text)
        .sort(),
      ["probe-echo:one", "probe-echo:two"],
    );
    assert.equal(results.length, 3);
    // pi's wording of a bad-arguments error changes between releases; only the tool name is stable.
    const failed = results.find((r) => r.isError)?.text ?? "";
    assert.match(failed, /"probe_echo"/);
    const seen = text.split(" | ");
    assert.deepEqual(seen.filter((line) => line.startsWith("probe-echo:")).sort(), [
      "probe-echo:one",
      "probe-echo:two",
    ]);
    assert.ok(
      seen.some((line) => line === failed.split("\n")[0]),
      "the failed call's error reached the model",
    );
  });

  it("two processes share one model server, told apart by model id", async () => {
    const server = world.modelServer;
    server.script = (req) => `${req.model} heard ${req.lastUserText}`;
    try {
      const [a, b] = await Promise.all([alice.promptAndWait("one"), bob.promptAndWait("two")]);
      assert.equal(a.text, "alice heard one");
      assert.equal(b.text, "bob heard two");
    } finally {
      server.script = undefined;
    }
  });

  it("an extension command runs over RPC and its widget, status and notification arrive", async () => {
    const echoesBefore = Number(/(\d+) echo/.exec(bob.widget("probe")?.[0] ?? "")?.[1] ?? 0);
    const since = bob.mark();
    await bob.prompt("/probe hello world");
    const widgets = bob.collectExtensionUi("setWidget", { since });
    assert.equal(widgets.length, 1);
    assert.deepEqual(widgets[0], {
      type: "extension_ui_request",
      id: widgets[0]?.id,
      method: "setWidget",
      widgetKey: "probe",
      widgetLines: [`probe widget: ${echoesBefore} echo(es)`, "command args: hello world"],
      widgetPlacement: "belowEditor",
    });
    assert.equal(bob.status("probe"), "probe ready");
    assert.deepEqual(bob.notifications({ since }), [
      { message: 'probe ran with "hello world"', notifyType: "info" },
    ]);
  });

  it("answers dialogs automatically or by hand", async () => {
    alice.onDialog((req) => (req.method === "input" ? { value: "mango" } : undefined));
    await alice.prompt("/probe ask");
    assert.deepEqual(alice.widget("probe")?.at(-1), "answer: mango");

    alice.onDialog(undefined);
    const since = alice.mark();
    const done = alice.prompt("/probe ask");
    const dialog = await alice.waitFor((r) => r.type === "extension_ui_request" && r.method === "input", {
      since,
    });
    assert.equal(dialog.title, "Probe question");
    alice.respondUi(String(dialog.id), { cancelled: true });
    await done;
    assert.deepEqual(alice.widget("probe")?.at(-1), "answer: (cancelled)");
  });

  it("abort ends a turn while the model is still answering", async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    world.modelServer.reply("bob", async () => {
      await gate;
      return "too late";
    });
    const since = bob.mark();
    try {
      await bob.prompt("think slowly");
      await world.modelServer.waitForRequest((r) => r.model === "bob" && r.lastUserText === "think slowly");
      await bob.abort();
      await bob.waitForSettled({ since });
      const end = await bob.waitFor(
        (r) => r.type === "message_end" && (r.message as { role?: string }).role === "assistant",
        { since },
      );
      assert.equal((end.message as { stopReason?: string }).stopReason, "aborted");
    } finally {
      release();
    }
  });

  it("/harness-reload reloads the extensions over RPC", async () => {
    assert.equal(alice.status("probe-session"), "session_start:startup");
    await alice.prompt("/harness-reload");
    await alice.waitFor(
      (r) =>
        r.type === "extension_ui_request" &&
        r.method === "setStatus" &&
        r.statusText === "session_start:reload",
    );
    assert.equal(alice.status("probe-session"), "session_start:reload");
  });

  it("waitFor gives up after its bound with diagnostics instead of hanging", async () => {
    await assert.rejects(
      alice.waitFor(() => false, { since: alice.mark(), timeoutMs: 200, label: "an event that never comes" }),
      /an event that never comes not seen within 200 ms[\s\S]*last records:[\s\S]*stderr tail:/,
    );
  });
});

describe("pi process cleanup", () => {
  let server: ModelServer;
  before(async () => {
    server = await startModelServer();
  });
  after(async () => {
    await server?.close();
  });

  it("stop() ends pi, its detached grandchildren and removes the sandbox", async () => {
    const pi = await startPi({ modelServer: server, extensions: [PROBE], session: false });
    let grandchild = 0;
    try {
      await pi.prompt("/probe spawn");
      const note = pi.notifications().find((n) => n.message.startsWith("spawned "));
      grandchild = Number(note?.message.slice("spawned ".length));
      assert.ok(grandchild > 0 && alive(grandchild), "the detached grandchild runs");
    } finally {
      await pi.stop();
    }
    assert.equal(pi.running, false);
    assert.equal(alive(grandchild), false, "the detached grandchild was swept");
    assert.equal(existsSync(pi.sandbox.root), false, "the sandbox is gone");
  });
});

describe("tmux detection", () => {
  it("names the missing tmux and how to get it when tmux is not on PATH", () => {
    assert.match(tmuxMissing({ PATH: "/nonexistent" }) ?? "", /tmux is not installed: npm test installs it/);
  });
});

describe("real pi in a terminal (tmux)", () => {
  let world: PiWorld | undefined;
  after(async () => {
    await world?.close();
  });

  it("shows the widget on screen after a typed command, next to an RPC peer; close() ends both", async (t) => {
    world = await createPiWorld({ extensions: [PROBE] });
    let tui: TmuxPi | undefined;
    try {
      const [peer, started] = await Promise.all([
        world.startPi({ name: "peer" }),
        startPiInTmux({ world, name: "tui", cols: 100, rows: 30 }),
      ]);
      tui = started;
      await tui.waitForScreen(/session_start:startup/);
      await tui.submit("/probe on screen");
      const screen = await tui.waitForScreen(/command args: on screen/);
      assert.match(screen, /probe widget: 0 echo\(es\)/);
      await peer.prompt("/probe from rpc");
      assert.deepEqual(peer.widget("probe")?.at(-1), "command args: from rpc");
    } catch (error) {
      t.diagnostic(`last screen:\n${await tui?.capturePane().catch(() => "")}`);
      throw error;
    }
    assert.ok(pidsWithMarker(world.marker).length >= 2, "pi in tmux and over RPC carry the world's marker");
    await world.close();
    assert.deepEqual(pidsWithMarker(world.marker), [], "nothing of the world is left running");
    assert.equal(existsSync(world.root), false);
    assert.equal(existsSync(tui.sandbox.root), false);
  });
});

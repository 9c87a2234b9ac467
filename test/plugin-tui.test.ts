/**
 * The plugin in a real terminal: interactive pi in tmux types `/coms start`,
 * an RPC session is its peer, and the screen shows both; every complete
 * subcommand runs with a single Enter.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createPiWorld, type PiWorld } from "./support/pi-harness.ts";
import { startPiInTmux, type TmuxPi } from "./support/tmux.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");

describe("pool widget in a real terminal (tmux)", () => {
  let world: PiWorld | undefined;
  after(async () => {
    await world?.close();
  });

  it("shows both peers below the editor after typing /coms start", async (t) => {
    world = await createPiWorld({ extensions: [PLUGIN], env: { PI_COMS_PING_INTERVAL_MS: "300" } });
    let tui: TmuxPi | undefined;
    try {
      const [coder, started] = await Promise.all([
        world.startPi({ name: "coder" }),
        startPiInTmux({ world, name: "reviewer", cols: 120, rows: 32 }),
      ]);
      tui = started;
      await coder.prompt('/coms start --name coder --purpose "implements features" --color #33cc33');
      await tui.waitForScreen(/reviewer/, { timeoutMs: 30_000 });
      await tui.submit('/coms start --name reviewer --purpose "code reviewer"');
      // pi refuses input until its startup finishes; the command stays in the editor, so press Enter again.
      let screen = "";
      for (let attempt = 0; attempt < 30 && !/● coder /.test(screen); attempt++) {
        screen = await tui
          .waitForScreen(/● coder .*queue \d+ +online/, { timeoutMs: 1000 })
          .catch(async () => {
            const now = await tui?.capturePane();
            if (now?.includes("/coms start --name reviewer")) await tui?.sendKeys("Enter");
            return now ?? "";
          });
      }
      assert.match(screen, /● coder .*queue \d+ +online/);
      assert.match(screen, /coms \(P2P\) · you: reviewer/);
      assert.match(screen, /coms: reviewer/, "status line names the active system");
      const lines = await coder.waitForWidget("pi-coms-pool", (l) => l.some((x) => x.includes("● reviewer")));
      assert.ok(lines.some((l) => l.includes("you: coder")));

      // An inbound prompt and the reply sent back are drawn by the plugin's renderers.
      const server = world.modelServer;
      server.reply("reviewer", "Looks good to me.");
      server.reply(
        "coder",
        {
          toolCalls: [{ name: "coms_send", arguments: { to: "reviewer", prompt: "Please check my patch." } }],
        },
        (req) => {
          const id = /msg_id ([0-9A-Z]{26})/.exec(req.newToolResults[0]?.text ?? "")?.[1];
          return { toolCalls: [{ name: "coms_await", arguments: { msg_id: id, timeout_ms: 20_000 } }] };
        },
        "done",
      );
      const since = coder.mark();
      await coder.promptAndWait("ask the reviewer", { timeoutMs: 30_000 });
      assert.match(coder.toolResults({ since, toolName: "coms_await" })[0]?.text ?? "", /Looks good to me\./);
      const after = await tui.waitForScreen(/reply sent to coder/, { timeoutMs: 10_000 });
      assert.match(after, /peer prompt from coder \(implements features\)/);
      assert.match(after, /Please check my patch\./);
    } catch (error) {
      t.diagnostic(`last screen:\n${await tui?.capturePane().catch(() => "")}`);
      throw error;
    }
  });

  it("runs each complete subcommand with one Enter", async (t) => {
    const enterWorld = await createPiWorld({ extensions: [PLUGIN] });
    let tui: TmuxPi | undefined;
    try {
      tui = await startPiInTmux({ world: enterWorld, name: "typist", cols: 120, rows: 32 });
      // pi takes no input until its start-up is done: retry a harmless command until it runs.
      await tui.waitForScreen(/typist/, { timeoutMs: 30_000 });
      await tui.submit("/coms");
      for (let attempt = 0; attempt < 30; attempt++) {
        const ran = await tui
          .waitForScreen(/coms is not active/, { timeoutMs: 1000 })
          .then(() => true)
          .catch(() => false);
        if (ran) break;
        if (/^\s*\/coms\s*$/m.test(await tui.capturePane())) await tui.sendKeys("Enter");
      }
      await tui.waitForScreen(/coms is not active/);
      const steps: Array<[string, RegExp]> = [
        ["/coms status", /coms \(P2P\): inactive/],
        ["/coms start", /coms active as /],
        ["/coms status", /coms \(P2P\): active as /],
        ["/coms stop", /coms stopped/],
        ["/coms-net status", /coms-net: inactive/],
        ["/coms-net start", /coms-net active as \S+; started the hub/],
        ["/coms-net disconnect", /coms-net disconnected/],
        ["/coms-net connect", /coms-net active as \S+; joined the hub/],
        ["/coms-net status", /coms-net: active as /],
        ["/coms-net stop", /coms-net stopped/],
      ];
      const count = (screen: string, pattern: RegExp) =>
        screen.match(new RegExp(pattern.source, "g"))?.length ?? 0;
      for (const [line, ran] of steps) {
        const before = count(await tui.capturePane(), ran);
        await tui.type(line);
        // The text is in the editor and any completion popup has had time to open.
        const inEditor = new RegExp(`^\\s*${line.replace(/[-/]/g, "\\$&")}\\s*$`, "m");
        await tui.waitForScreen(inEditor);
        await new Promise((r) => setTimeout(r, 400));
        await tui.sendKeys("Enter");
        let screen = "";
        for (let i = 0; i < 300 && count(screen, ran) <= before; i++) {
          await new Promise((r) => setTimeout(r, 100));
          screen = await tui.capturePane();
        }
        assert.ok(count(screen, ran) > before, `${line}: one Enter did not run it:\n${screen}`);
        assert.ok(!inEditor.test(screen), `${line} is still in the editor:\n${screen}`);
      }
    } catch (error) {
      t.diagnostic(`last screen:\n${await tui?.capturePane().catch(() => "")}`);
      throw error;
    } finally {
      await enterWorld.close();
    }
  });
});

/**
 * `--sqlite-sync full` (PI_COMS_NET_SQLITE_SYNC): a hub whose SQLite store
 * fsyncs every commit, for operators who need acknowledged messages to
 * survive an OS crash or power loss. The setting is read back from SQLite
 * (what the database does, not what was asked), on Node's and Bun's SQLite;
 * such a hub serves and keeps messages across a kill -9 like any other; bad
 * values and a flag for another store are refused before anything starts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { openSqliteStore } from "../hub/store/sqlite.ts";
import { HubWorld, kill9, waitFor } from "./support/hub-harness.ts";

const worlds: HubWorld[] = [];
const dirs: string[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function world(): HubWorld {
  const made = new HubWorld();
  worlds.push(made);
  return made;
}

describe("the SQLite store's sync setting", () => {
  it("is what SQLite reports: normal unless asked for full, and kept per open", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pcs-sync-"));
    dirs.push(dir);
    for (const [asked, expected] of [
      [undefined, "normal"],
      ["full", "full"],
      ["normal", "normal"],
    ] as const) {
      const store = await openSqliteStore(dir, asked ? { sync: asked } : {});
      assert.equal(store.sync, expected, `asked ${asked ?? "nothing"}`);
      store.close();
    }
  });

  for (const runtime of ["node", "bun"] as const) {
    it(`${runtime}: a hub started with --sqlite-sync full says so, serves, and keeps a message across kill -9`, async () => {
      const w = world();
      const hub = await w.startHub({
        runtime,
        args: ["--store", "sqlite", "--sqlite-sync", "full", "--port", "0"],
      });
      assert.match(hub.output(), /\(\w+, sqlite store, fsync per commit\)/);
      const asker = await w.connect(hub, "asker");
      const answerer = await w.connect(hub, "answerer");
      // "hello" is answered at once; "kept" is only taken, and answered after the hub's restart.
      const seen: string[] = [];
      answerer.onInbound((message) => {
        seen.push(message.prompt);
        if (message.prompt === "hello") void answerer.settle(message.msg_id, { ok: true, text: "hi" });
      });
      const hello = await asker.send({ to: "answerer", prompt: "hello" });
      assert.equal((await asker.await(hello.msg_id)).state, "reply");
      const kept = await asker.send({ to: "answerer", prompt: "kept" });
      await waitFor(() => seen.includes("kept"), { what: "the answerer to take the message" });
      await kill9(hub);
      // The same store and port, a hub with the default setting: the clients come back, the message is there.
      const again = await w.startHub({ runtime, args: ["--store", "sqlite", "--port", String(hub.port)] });
      assert.doesNotMatch(again.output(), /fsync per commit/);
      await waitFor(() => answerer.connection.state === "connected", {
        what: "the answerer to reconnect",
        timeoutMs: 20_000,
      });
      await answerer.settle(kept.msg_id, { ok: true, text: "answered after the restart" });
      const outcome = await asker.await(kept.msg_id, { timeoutMs: 20_000 });
      assert.equal(outcome.state === "reply" && outcome.text, "answered after the restart");
    });
  }

  it("refuses a value it does not know, from the flag or the variable, and the flag on another store", async () => {
    const w = world();
    const flag = await w.runCli(["--project", "x", "--sqlite-sync", "sometimes"]);
    assert.equal(flag.code, 2);
    assert.match(flag.out, /--sqlite-sync must be normal or full, got "sometimes"/);
    const memory = await w.runCli(["--project", "x", "--store", "memory", "--sqlite-sync", "full"]);
    assert.equal(memory.code, 2);
    assert.match(memory.out, /--sqlite-sync applies to the SQLite store only/);
    const env = await w.runCli(["--project", "x", "--store", "sqlite"], { PI_COMS_NET_SQLITE_SYNC: "off" });
    assert.notEqual(env.code, 0);
    assert.match(env.out, /PI_COMS_NET_SQLITE_SYNC must be normal or full, got "off"/);
  });
});

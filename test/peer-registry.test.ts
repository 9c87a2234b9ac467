/**
 * The on-disk registry through real peers in child processes: discovery,
 * unique names under a simultaneous start, explicit agents, project
 * isolation, pruning after kill -9, and file and socket permissions.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startP2P } from "../peer/node.ts";
import { type PeerEvent, Sandbox, until } from "./support/p2p-harness.ts";

type Card = { id: string; name: string; explicit: boolean; model: string; queue_depth: number };

const sandboxes: Sandbox[] = [];
function sandbox(): Sandbox {
  const box = new Sandbox();
  sandboxes.push(box);
  return box;
}
after(async () => {
  await Promise.all(sandboxes.map((box) => box.cleanup()));
});

const names = (cards: Card[]) => cards.map((card) => card.name).sort();
const mode = (path: string) => statSync(path).mode & 0o777;

describe("p2p registry", () => {
  it("two peers discover each other, by list and by onPeers events", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "alpha", project: "p1" });
    const b = await box.peer({ name: "beta", project: "p1", model: "model-b" });
    assert.deepEqual(names(await a.proc.call<Card[]>("list")), ["beta"]);
    assert.deepEqual(names(await b.proc.call<Card[]>("list")), ["alpha"]);
    const seen = await a.proc.waitEvent(
      (event: PeerEvent) => event.event === "peers" && names(event.peers as Card[]).includes("beta"),
    );
    assert.equal((seen.peers as Card[])[0]?.model, "model-b");
  });

  it("five peers all see the other four", async () => {
    const box = sandbox();
    const peers = await Promise.all(
      ["p1", "p2", "p3", "p4", "p5"].map((name) => box.peer({ name, project: "five" })),
    );
    for (const peer of peers) {
      const others = ["p1", "p2", "p3", "p4", "p5"].filter((name) => name !== peer.self.name);
      await until(
        async () => JSON.stringify(names(await peer.proc.call<Card[]>("list"))) === JSON.stringify(others),
        10_000,
        `${peer.self.name} to list the other four`,
      );
    }
  });

  it("two sessions starting at the same moment with one name get coder and coder2", async () => {
    const box = sandbox();
    const procs = [0, 1, 2].map(() => box.peer({ name: "coder", project: "race" }));
    const started = await Promise.all(procs);
    assert.deepEqual(started.map((peer) => peer.self.name).sort(), ["coder", "coder2", "coder3"]);
    assert.equal(new Set(started.map((peer) => peer.self.id)).size, 3);
    const files = readdirSync(join(box.env.PI_COMS_DIR as string, "projects", "race", "agents")).sort();
    assert.deepEqual(files, ["coder.json", "coder2.json", "coder3.json"]);
  });

  it("explicit agents are hidden from listings but reachable by exact name", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "lister", project: "ex" });
    await box.peer({ name: "shown", project: "ex" });
    const hidden = await box.peer({ name: "secret", project: "ex", explicit: true });
    await hidden.proc.call("autoReply", { on: true });
    assert.deepEqual(names(await a.proc.call<Card[]>("list")), ["shown"]);
    assert.deepEqual(names(await a.proc.call<Card[]>("list", { include_explicit: true })), [
      "secret",
      "shown",
    ]);
    const ack = await a.proc.call<{ msg_id: string; to: string }>("send", {
      input: { to: "secret", prompt: "hi" },
    });
    assert.equal(ack.to, "secret");
    const outcome = await a.proc.call<{ state: string; text: string }>("await", {
      msg_id: ack.msg_id,
      timeoutMs: 10_000,
    });
    assert.deepEqual([outcome.state, outcome.text], ["reply", "echo: hi"]);
  });

  it("projects are isolated: no listing and no delivery across them", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "same", project: "left" });
    const b = await box.peer({ name: "other", project: "right" });
    assert.deepEqual(await a.proc.call<Card[]>("list", { include_explicit: true }), []);
    assert.deepEqual(await b.proc.call<Card[]>("list", { include_explicit: true }), []);
    await assert.rejects(a.proc.call("send", { input: { to: "other", prompt: "hi" } }), {
      code: "UNKNOWN_PEER",
    });
    // The same name in two projects is not a clash.
    const c = await box.peer({ name: "same", project: "right" });
    assert.equal(c.self.name, "same");
  });

  it("kill -9 of a peer: its entry is pruned and an await on it ends with PEER_GONE", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "sender", project: "crash" });
    const b = await box.peer({ name: "victim", project: "crash" });
    const ack = await a.proc.call<{ msg_id: string }>("send", {
      input: { to: "victim", prompt: "never answered" },
    });
    await b.proc.waitEvent((event) => event.event === "inbound");
    const waiting = a.proc.call<{ state: string; code: string }>("await", {
      msg_id: ack.msg_id,
      timeoutMs: 60_000,
    });
    await b.proc.kill("SIGKILL");
    const outcome = await waiting;
    assert.deepEqual([outcome.state, outcome.code], ["error", "PEER_GONE"]);
    assert.deepEqual(await a.proc.call<Card[]>("list"), []);
    const entry = join(box.env.PI_COMS_DIR as string, "projects", "crash", "agents", "victim.json");
    assert.equal(existsSync(entry), false);
    // A newcomer takes the freed name without a suffix.
    const c = await box.peer({ name: "victim", project: "crash" });
    assert.equal(c.self.name, "victim");
  });

  it("a stale entry left by a crashed session is pruned when the next session starts", async () => {
    const box = sandbox();
    const b = await box.peer({ name: "ghost", project: "stale" });
    await b.proc.kill("SIGKILL");
    const entry = join(box.env.PI_COMS_DIR as string, "projects", "stale", "agents", "ghost.json");
    assert.equal(existsSync(entry), true, "kill -9 leaves the entry behind");
    await box.peer({ name: "fresh", project: "stale" });
    assert.equal(existsSync(entry), false);
  });

  it("directories are 0700, entries and sockets 0600", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "perm", project: "perms" });
    const root = box.env.PI_COMS_DIR as string;
    assert.equal(mode(root), 0o700);
    assert.equal(mode(join(root, "projects")), 0o700);
    assert.equal(mode(join(root, "projects", "perms")), 0o700);
    assert.equal(mode(join(root, "projects", "perms", "agents")), 0o700);
    assert.equal(mode(join(root, "projects", "perms", "agents", "perm.json")), 0o600);
    assert.equal(mode(join(a.socket, "..")), 0o700);
    assert.ok(statSync(a.socket).isSocket());
    assert.equal(mode(a.socket), 0o600);
  });

  it("close() removes the socket and the entry", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "leaver", project: "leave" });
    const entry = join(box.env.PI_COMS_DIR as string, "projects", "leave", "agents", "leaver.json");
    assert.equal(existsSync(entry), true);
    await a.proc.call("close");
    assert.equal(existsSync(entry), false);
    assert.equal(existsSync(a.socket), false);
  });
});

describe("p2p cards and restarts", () => {
  it("a card change (model, context use) reaches the other peers", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "watcher", project: "cards" });
    const b = await box.peer({ name: "worker", project: "cards", model: "old-model" });
    await a.proc.waitEvent(
      (e) => e.event === "peers" && (e.peers as Card[]).some((c) => c.model === "old-model"),
    );
    await b.proc.call("updateCard", { patch: { model: "new-model", context_used_pct: 42 } });
    const event = await a.proc.waitEvent(
      (e) => e.event === "peers" && (e.peers as Card[]).some((c) => c.model === "new-model"),
    );
    assert.equal((event.peers as Array<Card & { context_used_pct: number }>)[0]?.context_used_pct, 42);
  });

  it("the ping reports a peer's live queue depth", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "asker", project: "depth" });
    const b = await box.peer({ name: "busy", project: "depth" });
    await b.proc.call("send", { input: { to: "asker", prompt: "first" } });
    await a.proc.waitEvent((e) => e.event === "inbound");
    await b.proc.waitEvent(
      (e) =>
        e.event === "peers" && (e.peers as Card[]).some((c) => c.name === "asker" && c.queue_depth === 1),
    );
  });

  it("a name reused by a restarted session: sends reach the new agent", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "sender", project: "restart" });
    const first = await box.peer({ name: "target", project: "restart" });
    await first.proc.call("autoReply", { on: true });
    const ack1 = await a.proc.call<{ msg_id: string; to_id: string }>("send", {
      input: { to: "target", prompt: "one" },
    });
    assert.equal(ack1.to_id, first.self.id);
    await first.proc.kill("SIGKILL");
    const second = await box.peer({ name: "target", project: "restart" });
    await second.proc.call("autoReply", { on: true });
    assert.equal(second.self.name, "target");
    const ack2 = await a.proc.call<{ msg_id: string; to_id: string }>("send", {
      input: { to: "target", prompt: "two" },
    });
    assert.equal(ack2.to_id, second.self.id);
    const outcome = await a.proc.call<{ text: string }>("await", { msg_id: ack2.msg_id, timeoutMs: 10_000 });
    assert.equal(outcome.text, "echo: two");
  });
});

describe("p2p socket paths", () => {
  it("a PI_COMS_DIR too deep for a Unix socket path puts sockets in a private temp dir", async () => {
    const box = sandbox();
    const deep = join(box.dir, "d".repeat(60), "e".repeat(60));
    const tmp = join(box.dir, "t");
    const a = await box.peer({ name: "deep", project: "deep" }, { PI_COMS_DIR: deep, TMPDIR: tmp });
    const b = await box.peer({ name: "deeper", project: "deep" }, { PI_COMS_DIR: deep, TMPDIR: tmp });
    assert.ok(a.socket.startsWith(tmp), a.socket);
    assert.ok(Buffer.byteLength(a.socket) <= 103);
    assert.equal(mode(join(a.socket, "..")), 0o700);
    assert.equal(mode(a.socket), 0o600);
    await b.proc.call("autoReply", { on: true });
    const ack = await a.proc.call<{ msg_id: string }>("send", { input: { to: "deeper", prompt: "deep" } });
    const outcome = await a.proc.call<{ text: string }>("await", { msg_id: ack.msg_id, timeoutMs: 10_000 });
    assert.equal(outcome.text, "echo: deep");
    // A crash leaves the socket file; pruning removes it with the entry. Whoever notices
    // first prunes: the list below, or a itself when its open connection to b drops.
    await b.proc.kill("SIGKILL");
    await a.proc.call("list");
    assert.equal(existsSync(b.socket), false);
    await a.proc.call("close");
    assert.equal(existsSync(a.socket), false);
  });
});

describe("p2p socket paths in process", () => {
  it("startP2P({ env }) takes the socket fallback from env.TMPDIR, not from the process", async () => {
    const box = sandbox();
    const tmp = join(box.dir, "t");
    const env = { ...box.env, PI_COMS_DIR: join(box.dir, "d".repeat(60), "e".repeat(60)), TMPDIR: tmp };
    assert.notEqual(process.env.TMPDIR, tmp);
    const node = await startP2P({ name: "a", project: "tmp", env });
    try {
      assert.equal(join(node.socketPath, "..", ".."), tmp);
      assert.equal(mode(join(node.socketPath, "..")), 0o700);
    } finally {
      await node.close();
    }
  });
});

describe("p2p registry lock", () => {
  it("a lock left by a crashed process does not block the next start", async () => {
    const box = sandbox();
    const { spawnSync } = await import("node:child_process");
    const { mkdirSync, writeFileSync } = await import("node:fs");
    const gone = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid as number;
    const project = join(box.env.PI_COMS_DIR as string, "projects", "locked");
    mkdirSync(project, { recursive: true, mode: 0o700 });
    writeFileSync(join(project, "agents.lock"), String(gone), { mode: 0o600 });
    const a = await box.peer({ name: "after-crash", project: "locked" });
    assert.equal(a.self.name, "after-crash");
    assert.equal(existsSync(join(project, "agents.lock")), false);
  });
});

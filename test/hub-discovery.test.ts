import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ComsError } from "../contract/errors.ts";
import { ensureHub, findHub, stopHub } from "../hub/client/discovery.ts";
import { connectHub } from "../hub/client/hub-client.ts";
import { pidAlive } from "../lib/process.ts";
import { HubWorld, ROOT, waitFor } from "./support/hub-harness.ts";

describe("hub discovery and auto-start", () => {
  const world = new HubWorld();
  const project = "auto";
  let hubPid: number | undefined;
  after(async () => {
    if (hubPid && pidAlive(hubPid)) process.kill(hubPid, "SIGKILL");
    await world.dispose();
  });

  it("five sessions starting at once end up with one detached hub", async () => {
    assert.equal(await findHub(project, world.env), null);
    const runs = Array.from({ length: 5 }, () =>
      world.run(process.execPath, [join(ROOT, "test/support/hub-ensure.ts"), project]),
    );
    const results = await Promise.all(runs);
    const handles = results.map(({ code, out }) => {
      assert.equal(code, 0, out);
      return JSON.parse(out) as { url: string; token: string; pid: number; startedByMe: boolean };
    });
    hubPid = handles[0]?.pid;
    assert.equal(new Set(handles.map((h) => h.pid)).size, 1, "one hub");
    assert.equal(new Set(handles.map((h) => h.url)).size, 1);
    assert.equal(handles.filter((h) => h.startedByMe).length, 1, "exactly one starter");
    // It outlived every process that asked for it.
    assert.ok(pidAlive(hubPid as number));
    const found = await findHub(project, world.env);
    assert.equal(found?.pid, hubPid);
    const again = await ensureHub({ project, env: world.env });
    assert.equal(again.startedByMe, false);
    assert.equal(again.pid, hubPid);
  });

  it("clients find the hub through the discovery file and the secret", async () => {
    const a = await connectHub({ project, env: world.env, name: "a" });
    world.defer(() => a.close());
    const b = await connectHub({ project, env: world.env, name: "b" });
    world.defer(() => b.close());
    b.onInbound((message) => void b.settle(message.msg_id, { ok: true, text: "found you" }));
    const ack = await a.send({ to: "b", prompt: "hi" });
    const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "found you");
    await a.close();
    await b.close();
  });

  it("a client follows the hub when it is started again on another port after a crash", async () => {
    const env = { ...world.env, PI_COMS_NET_HEARTBEAT_MS: "200" };
    // As the plugin does: the URL and token ensureHub returned are passed back in.
    const current = await ensureHub({ project, env: world.env });
    const a = await connectHub({ project, env, name: "follower", url: current.url, token: current.token });
    world.defer(() => a.close());
    const b = await connectHub({ project, env, name: "answerer" });
    world.defer(() => b.close());
    b.onInbound((message) => {
      void b.settle(message.msg_id, { ok: true, text: "still here" });
    });
    const before = a.url;
    process.kill(hubPid as number, "SIGKILL");
    await waitFor(() => !pidAlive(hubPid as number), { what: "the hub to die" });
    const next = await ensureHub({ project, env: world.env });
    hubPid = next.pid;
    assert.equal(next.startedByMe, true);
    assert.notEqual(next.url, before);
    const ack = await waitFor(
      async () => {
        try {
          return await a.send({ to: "answerer", prompt: "where are you?" });
        } catch {
          return undefined;
        }
      },
      { what: "the client to find the new hub", timeoutMs: 15_000 },
    );
    const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "still here");
    assert.equal(a.url, next.url);
    await a.close();
    await b.close();
  });

  it("stopHub stops it gracefully and removes the discovery file; a stale file is ignored", async () => {
    const discovery = join(world.env.PI_COMS_NET_DIR as string, "projects", project, "server.json");
    assert.ok(existsSync(discovery));
    assert.equal(await stopHub(project, world.env), true);
    await waitFor(() => !pidAlive(hubPid as number), { what: "the hub to exit" });
    assert.ok(!existsSync(discovery));
    assert.equal(await findHub(project, world.env), null);
    assert.equal(await stopHub(project, world.env), false);
    // A discovery file left by a dead hub does not count, and is not trusted for a kill.
    const fresh = await ensureHub({ project, env: world.env, store: "memory" });
    hubPid = fresh.pid;
    assert.equal(fresh.startedByMe, true);
    process.kill(fresh.pid, "SIGKILL");
    await waitFor(() => !pidAlive(fresh.pid), { what: "the killed hub to go" });
    assert.equal(await findHub(project, world.env), null);
    const restarted = await ensureHub({ project, env: world.env, store: "memory" });
    hubPid = restarted.pid;
    assert.equal(restarted.startedByMe, true);
    assert.notEqual(restarted.pid, fresh.pid);
    assert.equal(await stopHub(project, world.env), true);
  });

  it("connectHub refuses a project name that leaves the projects root: no file outside is read, no token sent", async () => {
    // A hub look-alike outside PI_COMS_NET_DIR/projects, with a server.json and a secret of its own.
    const seen: string[] = [];
    const decoy = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => decoy.listen(0, "127.0.0.1", resolve));
    world.defer(() => new Promise<void>((resolve) => decoy.close(() => resolve())));
    const outside = join(world.dir, "outside");
    mkdirSync(outside, { recursive: true, mode: 0o700 });
    const url = `http://127.0.0.1:${(decoy.address() as AddressInfo).port}`;
    writeFileSync(join(outside, "server.json"), JSON.stringify({ url, pid: process.pid, started_at: 1 }));
    writeFileSync(join(outside, "server.secret.json"), JSON.stringify({ token: "t".repeat(32) }), {
      mode: 0o600,
    });
    // PI_COMS_NET_DIR/projects/../../outside is that directory.
    for (const name of ["../../outside", "a/b", ".hidden", ""]) {
      await assert.rejects(connectHub({ project: name, env: world.env }), (error: ComsError) => {
        assert.equal(error.code, "BAD_INPUT");
        assert.match(error.message, /bad project name/);
        return true;
      });
    }
    assert.deepEqual(seen, [], "nothing reached the URL found outside");
  });
});

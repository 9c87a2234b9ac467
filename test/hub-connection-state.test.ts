/**
 * A client tells when its hub is unreachable: a real hub process stopped
 * (kill -9, and a clean stop) moves `connection` to "unreachable" within a
 * few heartbeat periods, with the time and the reason; the hub started again
 * on the same port and directory moves it back to "connected", and messages
 * flow again.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ConnectionStatus } from "../contract/client.ts";
import { echo, type HubProcess, HubWorld, kill9, type Runtime, waitFor } from "./support/hub-harness.ts";

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

const HEARTBEAT_MS = 300;

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`connection state against a ${runtime} hub`, () => {
    it("stopped hub → unreachable (with since and reason); restarted → connected, and messaging works", async () => {
      const world = new HubWorld({ PI_COMS_NET_HEARTBEAT_MS: String(HEARTBEAT_MS) });
      worlds.push(world);
      let hub: HubProcess = await world.startHub({ runtime, args: ["--port", "0"] });
      const port = hub.port;
      const a = await world.connect(hub, "a");
      const b = await world.connect(hub, "b");
      echo(b);
      assert.equal(a.connection.state, "connected");
      assert.ok(a.connection.lastContactAt);
      const changes: ConnectionStatus[] = [];
      a.onConnection((status) => changes.push(status));

      const stoppedAt = Date.now();
      await kill9(hub);
      // Within a few heartbeat periods (bounded wait, not a timing assertion).
      const down = await waitFor(() => (a.connection.state === "unreachable" ? a.connection : undefined), {
        what: "the client to report the hub unreachable",
        timeoutMs: 10 * HEARTBEAT_MS + 5_000,
      });
      assert.ok(down.since >= stoppedAt, "since: when it was found out");
      assert.ok(down.lastError, "a reason is given");
      assert.ok((down.lastContactAt ?? 0) <= down.since);
      assert.equal(changes.at(-1)?.state, "unreachable", "listeners hear it");
      // It stays unreachable while the hub is down (heartbeats keep failing).
      await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
      assert.equal(a.connection.state, "unreachable");

      hub = await world.startHub({ runtime, args: ["--port", String(port)] });
      await waitFor(() => a.connection.state === "connected", {
        what: "the client to report the hub connected again",
        timeoutMs: 20_000,
      });
      assert.equal(changes.at(-1)?.state, "connected");
      assert.ok((a.connection.lastContactAt ?? 0) >= down.since);
      const ack = await a.send({ to: "b", prompt: "after the restart" });
      const reply = await a.await(ack.msg_id, { timeoutMs: 20_000 });
      assert.equal(reply.state === "reply" && reply.text, "re: after the restart", JSON.stringify(reply));
    });
  });
}

describe("connection state, other edges", () => {
  it("a hub stopped cleanly (SIGTERM) is reported too; close() ends in 'closed' and tells no one after", async () => {
    const world = new HubWorld({ PI_COMS_NET_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    worlds.push(world);
    const hub = await world.startHub();
    const a = await world.connect(hub, "a");
    hub.child.kill("SIGTERM");
    await hub.exited;
    await waitFor(() => a.connection.state === "unreachable", {
      what: "unreachable after a clean stop",
      timeoutMs: 10 * HEARTBEAT_MS + 5_000,
    });
    let heard = 0;
    a.onConnection(() => heard++);
    await a.close();
    assert.equal(a.connection.state, "closed");
    const after = heard;
    await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
    assert.equal(heard, after, "nothing after close");
  });
});

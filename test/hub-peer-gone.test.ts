/**
 * Truthful outcomes on the hub, against real hub processes: a recipient that
 * takes a message and dies (kill -9) ends it PEER_GONE for the sender once
 * it is silent with its stream gone (stale), one that keeps its stream but
 * falls silent once it is offline, never at the TTL; a message still queued
 * for an offline recipient says so in `get`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HubWorld, ROOT, type Runtime, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

const HOLD = join(ROOT, "test", "support", "hub-hold-client.ts");
// Fast presence: a heartbeat every 100 ms, offline after 1 s of silence. The TTL stays at its 30 min.
const PRESENCE = {
  PI_COMS_NET_HEARTBEAT_MS: "100",
  PI_COMS_NET_STALE_AFTER_MS: "400",
  PI_COMS_NET_OFFLINE_AFTER_MS: "1000",
};

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`a hub sender learns that its recipient died (${runtime} hub)`, () => {
    it("kill -9 of a recipient holding a delivered message ends it PEER_GONE for the sender", async () => {
      const world = new HubWorld(PRESENCE);
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const boss = await world.connect(hub, "boss");
      const victim = world.track(
        spawn(process.execPath, [HOLD, "victim", hub.project], {
          env: { ...world.env, PI_COMS_NET_SERVER_URL: hub.url, PI_COMS_NET_AUTH_TOKEN: hub.token },
          stdio: ["ignore", "pipe", "pipe"],
        }),
      );
      let out = "";
      victim.stdout?.on("data", (chunk) => {
        out += chunk;
      });
      victim.stderr?.on("data", (chunk) => {
        out += chunk;
      });
      await waitFor(() => out.includes("ready"), {
        what: `the victim to connect (${out})`,
        timeoutMs: 20_000,
      });
      const ack = await boss.send({ to: "victim", prompt: "hold this" });
      await waitFor(() => out.includes(`got ${ack.msg_id}`), { what: "the victim to take the message" });
      await waitFor(
        async () => {
          const now = await boss.get(ack.msg_id);
          return now.state === "pending" && now.delivered;
        },
        { what: "the hub to see it delivered" },
      );
      const exited = new Promise((resolve) => victim.once("exit", resolve));
      victim.kill("SIGKILL");
      await exited;
      // Far below the message TTL (30 min): the sender hears within a few heartbeat periods.
      const outcome = await boss.await(ack.msg_id, { timeoutMs: 20_000 });
      assert.equal(outcome.state, "error", JSON.stringify(outcome));
      assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
      // Its stream closed with the process: stale is enough (offline would be too, later).
      assert.match(
        outcome.state === "error" ? outcome.message : "",
        /victim (is gone \(its inbox stream closed|went offline).* without answering/,
      );
      assert.deepEqual(await boss.get(ack.msg_id), outcome);
    });

    it("a recipient that keeps its stream but goes silent ends what it holds at offline, not at stale", async () => {
      const world = new HubWorld(PRESENCE);
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const boss = await world.connect(hub, "boss");
      const mute = await rawAgent(hub.url, hub.token, "mute");
      const got: string[] = [];
      const sub = mute.client.messages.inbox.subscribe(
        { lastEventId: null },
        {
          onData: ({ data }) => {
            if (data.kind === "message") got.push(data.message.msg_id);
          },
        },
      );
      world.defer(() => sub.unsubscribe());
      const ack = await boss.send({ to: "mute", prompt: "hold this" });
      await waitFor(() => got.includes(ack.msg_id), { what: "mute to be handed the message" });
      const outcome = await boss.await(ack.msg_id, { timeoutMs: 20_000 });
      assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
      assert.match(
        outcome.state === "error" ? outcome.message : "",
        /^mute went offline \(nothing heard from it for \d+ ms\) after this message had been sent to it, without answering$/,
      );
    });

    it("get says the recipient is offline for a message still queued for it", async () => {
      const world = new HubWorld(PRESENCE);
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const tx = await world.connect(hub, "tx");
      const away = await rawAgent(hub.url, hub.token, "away");
      await waitFor(async () => (await tx.list()).find((c) => c.name === "away")?.status === "offline", {
        what: "away offline",
      });
      const ack = await tx.send({ to: "away", prompt: "for later" });
      const pending = await tx.get(ack.msg_id);
      assert.deepEqual(pending, {
        state: "pending",
        msg_id: ack.msg_id,
        delivered: false,
        recipient: "offline",
      });
      // Back (a heartbeat): the message is queued for an agent that is there again.
      await away.client.agents.heartbeat.mutate({});
      await waitFor(
        async () => {
          const now = await tx.get(ack.msg_id);
          return now.state === "pending" && now.recipient === undefined;
        },
        { what: "get to drop the offline mark" },
      );
    });
  });
}

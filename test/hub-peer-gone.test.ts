/**
 * Truthful outcomes on the hub, against real hub processes: a recipient that
 * takes a message and dies (kill -9) ends it PEER_GONE for the sender once
 * it is silent with its stream gone (stale), one that keeps its stream but
 * falls silent once it is offline, never at the TTL; a message still queued
 * for an offline recipient says so in `get`. With presence timeouts far off,
 * a killed holder's closed stream alone ends what it held (default grace),
 * on one hub and through a second hub on Redis that relays its stream.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { HubClient } from "../hub/client/hub-client.ts";
import { type HubProcess, HubWorld, ROOT, type Runtime, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";
import { startRedis } from "./support/redis-server.ts";

const HOLD = join(ROOT, "test", "support", "hub-hold-client.ts");
// Fast presence: a heartbeat every 100 ms, offline after 1 s of silence. The TTL stays at its 30 min.
const PRESENCE = {
  PI_COMS_NET_HEARTBEAT_MS: "100",
  PI_COMS_NET_STALE_AFTER_MS: "400",
  PI_COMS_NET_OFFLINE_AFTER_MS: "1000",
};

// Presence that never lapses within a test: only a closed stream can end what a holder held.
const PRESENCE_FAR = {
  PI_COMS_NET_STALE_AFTER_MS: "3600000",
  PI_COMS_NET_OFFLINE_AFTER_MS: "7200000",
};
const GONE_BY_STREAM =
  /^victim is gone \(its inbox stream closed and it did not open one again within 3000 ms\) after (it had received this message|this message had been sent to it), without answering$/;

/** A hub client process `victim` on `url` that has taken a message from `boss` (not answered). */
async function victimHolding(
  world: HubWorld,
  hub: HubProcess,
  url: string,
  boss: HubClient,
): Promise<{ victim: ChildProcess; msgId: string }> {
  const victim = world.track(
    spawn(process.execPath, [HOLD, "victim", hub.project], {
      env: { ...world.env, PI_COMS_NET_SERVER_URL: url, PI_COMS_NET_AUTH_TOKEN: hub.token },
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
  await waitFor(() => out.includes("ready"), { what: `the victim to connect (${out})`, timeoutMs: 20_000 });
  const ack = await boss.send({ to: "victim", prompt: "hold this" });
  await waitFor(() => out.includes(`got ${ack.msg_id}`), { what: "the victim to take the message" });
  return { victim, msgId: ack.msg_id };
}

async function killNow(victim: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => victim.once("exit", resolve));
  victim.kill("SIGKILL");
  await exited;
}

/**
 * A hub client process `victim` on `url` takes a message from `boss` and is
 * killed -9; returns the sender's outcome, awaited far past any grace.
 */
async function killHolder(world: HubWorld, hub: HubProcess, url: string, boss: HubClient) {
  const { victim, msgId } = await victimHolding(world, hub, url, boss);
  await killNow(victim);
  const outcome = await boss.await(msgId, { timeoutMs: 120_000 });
  assert.deepEqual(await boss.get(msgId), outcome);
  return outcome;
}

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
      const { victim, msgId } = await victimHolding(world, hub, hub.url, boss);
      await waitFor(
        async () => {
          const now = await boss.get(msgId);
          return now.state === "pending" && now.delivered;
        },
        { what: "the hub to see it delivered" },
      );
      await killNow(victim);
      // Far below the message TTL (30 min): the sender hears within a few heartbeat periods.
      const outcome = await boss.await(msgId, { timeoutMs: 20_000 });
      assert.equal(outcome.state, "error", JSON.stringify(outcome));
      assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
      // Its stream closed with the process: stale is enough (offline would be too, later).
      assert.match(
        outcome.state === "error" ? outcome.message : "",
        /victim (is gone \(its inbox stream closed|went offline).* without answering/,
      );
      assert.deepEqual(await boss.get(msgId), outcome);
    });

    it("kill -9 of a holder ends what it held PEER_GONE through its closed stream, presence far off", async () => {
      const world = new HubWorld(PRESENCE_FAR);
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const boss = await world.connect(hub, "boss");
      const outcome = await killHolder(world, hub, hub.url, boss);
      assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
      assert.match(outcome.state === "error" ? outcome.message : "", GONE_BY_STREAM);
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

describe("a holder killed behind a relaying hub on Redis", () => {
  it("the active hub sees the relayed stream close: PEER_GONE through the closed stream", async () => {
    const redis = await startRedis();
    const world = new HubWorld({
      ...PRESENCE_FAR,
      PI_COMS_NET_AUTH_TOKEN: "peer-gone-token-0123456789abcdef",
    });
    worlds.push(world);
    world.defer(() => redis.dispose());
    const args = ["--store", redis.url, "--lease-ms", "2000"];
    const active = await world.startHub({ project: "gone", args });
    await waitFor(() => /active hub/.test(active.output()), { what: "the first hub to take the lease" });
    const relay = await world.startHub({ project: "gone", args });
    const boss = await world.connect(active, "boss");
    // The victim talks to the second hub only, which forwards its stream to the active one.
    const outcome = await killHolder(world, relay, relay.url, boss);
    assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
    assert.match(outcome.state === "error" ? outcome.message : "", GONE_BY_STREAM);
    assert.doesNotMatch(relay.output(), /active hub/, "the second hub only relayed");
  });
});

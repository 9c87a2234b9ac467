/**
 * The hub's resource bounds, against real hub processes (Node, and Bun where
 * it is cheap): a full recipient queue refuses sends with QUEUE_FULL, an
 * agent's streams past the limit close oldest-first, pending registrations
 * are capped, and idle registrations are reaped in minutes (here: 1.5 s)
 * with a definite outcome for what was queued to them.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { toComsError } from "../contract/errors.ts";
import type { InboxEvent } from "../contract/schemas.ts";
import { HubWorld, type Runtime, raw, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

async function setup(runtime: Runtime, args: string[], env: Record<string, string> = {}) {
  const world = new HubWorld(env);
  worlds.push(world);
  const hub = await world.startHub({ runtime, args });
  return { world, hub };
}

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`hub bounds (${runtime})`, () => {
    it("refuses a send to a full queue with QUEUE_FULL, and takes sends again once one is answered", async () => {
      const { world, hub } = await setup(runtime, ["--max-queue", "3"]);
      const ghost = await rawAgent(hub.url, hub.token, "ghost");
      const tx = await world.connect(hub, "tx");
      const acks = [];
      for (let i = 0; i < 3; i++) acks.push(await tx.send({ to: "ghost", prompt: `m${i}` }));
      assert.equal(acks[2]?.queue_depth, 3);
      await assert.rejects(tx.send({ to: "ghost", prompt: "one too many" }), (error: unknown) => {
        const coms = toComsError(error);
        assert.equal(coms.code, "QUEUE_FULL");
        assert.match(coms.message, /ghost's queue is full: it holds 3 unanswered messages.*nothing was sent/);
        return true;
      });
      const metrics = await raw(hub.url, "/metrics", { token: hub.token });
      assert.match(metrics.text, /pi_coms_sends_refused_total\{code="QUEUE_FULL"\} 1/);
      const first = acks[0]?.msg_id as string;
      await ghost.client.messages.settle.mutate({ msg_id: first, result: { ok: true, text: "done" } });
      const ack = await tx.send({ to: "ghost", prompt: "room again" });
      assert.equal(ack.queue_depth, 3);
    });

    it("closes an agent's oldest stream when it opens one past the limit; the newest ones get messages", async () => {
      const { world, hub } = await setup(runtime, ["--max-streams-per-agent", "2"]);
      const multi = await rawAgent(hub.url, hub.token, "multi");
      const tx = await world.connect(hub, "tx");
      const got: string[][] = [[], [], []];
      const ended = [false, false, false];
      const subs = [0, 1, 2].map((i) => {
        const sub = multi.client.messages.inbox.subscribe(
          { lastEventId: null },
          {
            onData: ({ data }: { data: InboxEvent }) => {
              if (data.kind === "message") got[i]?.push(data.message.prompt);
            },
            onComplete: () => {
              ended[i] = true;
            },
          },
        );
        world.defer(() => sub.unsubscribe());
        return sub;
      });
      assert.equal(subs.length, 3);
      await waitFor(() => ended[0], { what: "the oldest stream to be closed" });
      await tx.send({ to: "multi", prompt: "hello" });
      await waitFor(() => got[1]?.includes("hello") && got[2]?.includes("hello"), {
        what: "the two newest streams to get the message",
      });
      assert.deepEqual(got[0], []);
      assert.deepEqual([ended[1], ended[2]], [false, false]);
      const metrics = await raw(hub.url, "/metrics", { token: hub.token });
      // multi's two streams and tx's own.
      assert.match(metrics.text, /pi_coms_streams\{kind="inbox"\} 3/);
    });

    it("caps registrations that have not connected yet, with a clear refusal", async () => {
      const { hub } = await setup(runtime, ["--max-pending-registrations", "2"]);
      const a = await rawAgent(hub.url, hub.token, "a");
      await rawAgent(hub.url, hub.token, "b");
      await assert.rejects(rawAgent(hub.url, hub.token, "c"), (error: unknown) => {
        const coms = toComsError(error);
        assert.equal(coms.code, "RATE_LIMITED");
        assert.match(coms.message, /too many registrations waiting to connect: 2 agents/);
        return true;
      });
      // a connects its inbox: a slot frees.
      const sub = a.client.messages.inbox.subscribe({ lastEventId: null }, { onData: () => {} });
      try {
        const c = await waitFor(() => rawAgent(hub.url, hub.token, "c").catch(() => undefined), {
          what: "c to register once a connected",
        });
        assert.equal(c.card.name, "c");
      } finally {
        sub.unsubscribe();
      }
    });
  });
}

describe("hub reaping (node)", () => {
  const PRESENCE = {
    PI_COMS_NET_HEARTBEAT_MS: "100",
    PI_COMS_NET_STALE_AFTER_MS: "200",
    PI_COMS_NET_OFFLINE_AFTER_MS: "500",
  };

  it("reaps a registration that never opens its inbox; what was queued to it ends PEER_GONE", async () => {
    const { world, hub } = await setup("node", ["--reap-after-ms", "1500"], PRESENCE);
    const tx = await world.connect(hub, "tx");
    await rawAgent(hub.url, hub.token, "lurker");
    const ack = await tx.send({ to: "lurker", prompt: "anyone?" });
    const outcome = await tx.await(ack.msg_id, { timeoutMs: 15_000 });
    assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
    assert.match(
      outcome.state === "error" ? outcome.message : "",
      /lurker was reaped: it registered and never opened its inbox within 1500 ms/,
    );
    assert.ok(!(await tx.list({ include_explicit: true })).some((c) => c.name === "lurker"));
  });

  it("reaps an agent offline for the reap time; what was queued to it ends PEER_GONE", async () => {
    const { world, hub } = await setup("node", ["--reap-after-ms", "1500"], PRESENCE);
    const tx = await world.connect(hub, "tx");
    const sleeper = await rawAgent(hub.url, hub.token, "sleeper");
    // Connected once (so not a never-connected registration), gone again, then silent.
    const inboxStreams = async () =>
      /pi_coms_streams\{kind="inbox"\} (\d+)/.exec(
        (await raw(hub.url, "/metrics", { token: hub.token })).text,
      )?.[1];
    const sub = sleeper.client.messages.inbox.subscribe({ lastEventId: null }, { onData: () => {} });
    await waitFor(async () => (await inboxStreams()) === "2", { what: "sleeper's stream (and tx's)" });
    sub.unsubscribe();
    await waitFor(async () => (await inboxStreams()) === "1", { what: "sleeper's stream to close" });
    await waitFor(async () => (await tx.list()).find((c) => c.name === "sleeper")?.status === "offline", {
      what: "sleeper offline",
    });
    const ack = await tx.send({ to: "sleeper", prompt: "wake up" });
    const outcome = await tx.await(ack.msg_id, { timeoutMs: 15_000 });
    assert.equal(outcome.state === "error" && outcome.code, "PEER_GONE", JSON.stringify(outcome));
    assert.match(
      outcome.state === "error" ? outcome.message : "",
      /sleeper was reaped: offline for more than 1500 ms/,
    );
  });
});

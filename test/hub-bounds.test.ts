/**
 * The hub's resource bounds, against real hub processes (Node, and Bun where
 * it is cheap): a full recipient queue refuses sends with QUEUE_FULL, so does
 * a hub holding --max-queued-bytes of unanswered messages in all (its count
 * going down as messages settle, expire or end PEER_GONE, and counting what a
 * restart restores), an agent's streams past the limit close oldest-first, pending registrations
 * are capped, and idle registrations are reaped in minutes (here: 1.5 s)
 * with a definite outcome for what was queued to them.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { toComsError } from "../contract/errors.ts";
import type { InboxEvent } from "../contract/schemas.ts";
import { type HubProcess, HubWorld, kill9, type Runtime, raw, waitFor } from "./support/hub-harness.ts";
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

/** The hub-wide gauge of unanswered bytes, from /metrics. */
async function queuedBytes(hub: HubProcess): Promise<number> {
  const text = (await raw(hub.url, "/metrics", { token: hub.token })).text;
  const value = /^pi_coms_hub_queued_bytes (\d+)$/m.exec(text)?.[1];
  assert.ok(value !== undefined, "pi_coms_hub_queued_bytes is in /metrics");
  return Number(value);
}

/** The hub-wide bound alone, no per-agent share: one agent may use all of it. */
const HUB_WIDE_ONLY = ["--max-queued-bytes", "20000", "--max-queued-bytes-per-agent", "0"];

function isHubFull(held: number, limit: number) {
  return (error: unknown) => {
    const coms = toComsError(error);
    assert.equal(coms.code, "QUEUE_FULL");
    assert.match(
      coms.message,
      new RegExp(
        `the hub as a whole holds ${held} bytes of unanswered messages.*\\(--max-queued-bytes ${limit}\\); nothing was sent`,
      ),
    );
    return true;
  };
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

    it("refuses a send past the hub-wide byte bound with QUEUE_FULL, and takes sends again as messages settle", async () => {
      const { world, hub } = await setup(runtime, HUB_WIDE_ONLY);
      const one = await rawAgent(hub.url, hub.token, "one");
      const two = await rawAgent(hub.url, hub.token, "two");
      const tx = await world.connect(hub, "tx");
      const schema = { type: "object" };
      // Counted as --max-message-bytes counts: the prompt plus the response_schema's JSON.
      const schemaBytes = JSON.stringify(schema).length;
      const toOne = [
        await tx.send({ to: "one", prompt: "a".repeat(5000) }),
        await tx.send({ to: "one", prompt: "b".repeat(5000) }),
      ];
      const toTwo = [
        await tx.send({ to: "two", prompt: "c".repeat(5000) }),
        await tx.send({ to: "two", prompt: "d".repeat(5000 - schemaBytes), response_schema: schema }),
      ];
      assert.equal(await queuedBytes(hub), 20000);
      await assert.rejects(tx.send({ to: "two", prompt: "x" }), isHubFull(20000, 20000));
      await assert.rejects(tx.send({ to: "one", prompt: "y" }), isHubFull(20000, 20000));
      assert.equal((await tx.list()).find((card) => card.name === "two")?.queue_depth, 2, "nothing was sent");
      const settle = (who: typeof one, msgId: string) =>
        who.client.messages.settle.mutate({ msg_id: msgId, result: { ok: true, text: "done" } });
      await settle(one, toOne[0]?.msg_id as string);
      // The 4-byte reply counts until tx's client takes it (it acks outcomes as they arrive).
      await waitFor(async () => (await queuedBytes(hub)) === 15000, { what: "the count to drop to 15000" });
      // The room one made is anyone's: a send to two fits again, and only as much as was freed.
      const third = await tx.send({ to: "two", prompt: "e".repeat(5000) });
      await assert.rejects(tx.send({ to: "one", prompt: "z" }), isHubFull(20000, 20000));
      await settle(one, toOne[1]?.msg_id as string);
      for (const ack of [...toTwo, third]) await settle(two, ack.msg_id);
      await waitFor(async () => (await queuedBytes(hub)) === 0, { what: "the count to drop to 0" });
    });

    it("counts a reply its sender has not taken, until the sender takes it", async () => {
      const { hub } = await setup(runtime, HUB_WIDE_ONLY);
      const asker = await rawAgent(hub.url, hub.token, "asker");
      const answerer = await rawAgent(hub.url, hub.token, "answerer");
      const sent = await asker.client.messages.send.mutate({ to: "answerer", prompt: "p".repeat(1000) });
      assert.equal(await queuedBytes(hub), 1000);
      await answerer.client.messages.settle.mutate({
        msg_id: sent.msg_id,
        result: { ok: true, text: "r".repeat(12000) },
      });
      // The prompt is answered, but the hub now holds the reply for a sender that never reads.
      assert.equal(await queuedBytes(hub), 12000);
      await assert.rejects(
        asker.client.messages.send.mutate({ to: "answerer", prompt: "q".repeat(9000) }),
        isHubFull(12000, 20000),
      );
      await asker.client.messages.ack.mutate({ msg_ids: [sent.msg_id] });
      assert.equal(await queuedBytes(hub), 0);
      await asker.client.messages.send.mutate({ to: "answerer", prompt: "q".repeat(9000) });
    });

    it("a sender that never takes its replies is refused its share; nobody else is", async () => {
      // The default share: an eighth of the hub-wide bound (250,000 bytes here).
      const { world, hub } = await setup(runtime, ["--max-queued-bytes", "2000000"]);
      const culprit = await rawAgent(hub.url, hub.token, "culprit");
      const answerer = await rawAgent(hub.url, hub.token, "answerer");
      const bystander = await world.connect(hub, "bystander");
      // 20 messages in flight, each answered with 100 KB that the culprit never takes (never acks).
      const sent = [];
      for (let i = 0; i < 20; i++) {
        sent.push(await culprit.client.messages.send.mutate({ to: "answerer", prompt: `q${i}` }));
      }
      for (const ack of sent) {
        await answerer.client.messages.settle.mutate({
          msg_id: ack.msg_id,
          result: { ok: true, text: "r".repeat(100_000) },
        });
      }
      assert.equal(await queuedBytes(hub), 2_000_000);
      // Someone else still gets through, to the same recipient and to another.
      await bystander.send({ to: "answerer", prompt: "hello" });
      await bystander.send({ to: "culprit", prompt: "hello" });
      await assert.rejects(
        culprit.client.messages.send.mutate({ to: "answerer", prompt: "q" }),
        (error: unknown) => {
          const coms = toComsError(error);
          assert.equal(coms.code, "QUEUE_FULL");
          assert.match(
            coms.message,
            /your share of the hub's queues is used up: the hub holds 1\.9 MiB for you .*\(--max-queued-bytes-per-agent 250000\); nothing was sent/,
          );
          return true;
        },
      );
      const metrics = (await raw(hub.url, "/metrics", { token: hub.token })).text;
      assert.match(metrics, /^pi_coms_agent_held_bytes\{agent="culprit"\} 2000000$/m);
      // Taking its replies gives the culprit its room back.
      await culprit.client.messages.ack.mutate({ msg_ids: sent.map((ack) => ack.msg_id) });
      await culprit.client.messages.send.mutate({ to: "answerer", prompt: "q" });
    });

    it("a recipient that never answers fills its own share of the queues; sends to others go on", async () => {
      const { world, hub } = await setup(runtime, [
        "--max-queued-bytes",
        "80000",
        "--max-queued-bytes-per-agent",
        "20000",
      ]);
      await rawAgent(hub.url, hub.token, "sink");
      const other = await rawAgent(hub.url, hub.token, "other");
      const a = await world.connect(hub, "a");
      const b = await world.connect(hub, "b");
      await a.send({ to: "sink", prompt: "a".repeat(10_000) });
      await b.send({ to: "sink", prompt: "b".repeat(10_000) });
      await assert.rejects(a.send({ to: "sink", prompt: "c" }), (error: unknown) => {
        const coms = toComsError(error);
        assert.equal(coms.code, "QUEUE_FULL");
        assert.match(
          coms.message,
          /sink's queue is full: it holds 20000 bytes of unanswered messages.*\(--max-queued-bytes-per-agent 20000\); nothing was sent/,
        );
        return true;
      });
      await a.send({ to: "other", prompt: "d".repeat(10_000) });
      assert.ok(other.card.id);
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

describe("hub-wide queued bytes (node)", () => {
  it("counts what a restart restores, and what expires or ends PEER_GONE leaves the count", async () => {
    const world = new HubWorld();
    worlds.push(world);
    const args = HUB_WIDE_ONLY;
    let hub = await world.startHub({ args });
    const ghost = await rawAgent(hub.url, hub.token, "ghost");
    const tx = await world.connect(hub, "tx");
    await tx.send({ to: "ghost", prompt: "r".repeat(3000) });
    await tx.send({ to: "ghost", prompt: "s".repeat(2000) });
    const port = hub.port;
    await kill9(hub);
    hub = await world.startHub({ args: [...args, "--port", String(port)] });
    assert.equal(await queuedBytes(hub), 5000);
    const tx2 = await world.connect(hub, "tx2");
    await assert.rejects(tx2.send({ to: "ghost", prompt: "t".repeat(15001) }), isHubFull(5000, 20000));
    // ghost leaves: what was queued to it ends PEER_GONE and leaves the count.
    await ghost.client.agents.leave.mutate();
    assert.equal(await queuedBytes(hub), 0);
    await tx2.send({ to: "tx", prompt: "t".repeat(20000) });
    assert.equal(await queuedBytes(hub), 20000);
  });

  it("a message that expires leaves the count", async () => {
    const { world, hub } = await setup("node", HUB_WIDE_ONLY, {
      PI_COMS_NET_MESSAGE_TTL_MS: "3000",
    });
    await rawAgent(hub.url, hub.token, "ghost");
    const tx = await world.connect(hub, "tx");
    const ack = await tx.send({ to: "ghost", prompt: "u".repeat(20000) });
    await assert.rejects(tx.send({ to: "ghost", prompt: "v" }), isHubFull(20000, 20000));
    const outcome = await tx.await(ack.msg_id, { timeoutMs: 15_000 });
    assert.equal(outcome.state === "error" && outcome.code, "EXPIRED", JSON.stringify(outcome));
    assert.equal(await queuedBytes(hub), 0);
    await tx.send({ to: "ghost", prompt: "w".repeat(20000) });
  });
});

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

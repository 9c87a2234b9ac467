/**
 * Several hubs on one real redis-server: cross-hub round trips, list and
 * presence agreement, kill -9 of the hub a recipient is on in the middle of
 * 2,000 messages (counting lost, duplicated and out-of-order at the
 * recipient), a Redis restart with AOF, and a hub started while Redis is down.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { Message } from "../contract/schemas.ts";
import { CLUSTER_LEASE, redisCluster } from "./support/hub-cluster.ts";
import { echo, type HubProcess, kill9, raw, sendSurely, waitFor } from "./support/hub-harness.ts";
import { rawAgent, rawClient } from "./support/hub-raw-client.ts";
import { freePort, startRedis } from "./support/redis-server.ts";

const TOKEN = "cluster-test-token-0123456789abcdef";
const { redis, world, hubOn } = redisCluster(TOKEN);

function urls(...hubs: HubProcess[]): string {
  return hubs.map((hub) => hub.url).join(",");
}

describe("hubs sharing one Redis", { timeout: 180_000 }, () => {
  test("round trips across two hubs, both ways", async () => {
    const w = world();
    try {
      const a = await hubOn(w, "two");
      const b = await hubOn(w, "two");
      const dead = `http://127.0.0.1:${await freePort()}`;
      // The first URL answers nothing: the client starts on the next one.
      const alice = await w.connect(a, { url: `${dead},${a.url}`, name: "alice" });
      assert.equal(alice.url, a.url);
      const bob = await w.connect(b, "bob");
      echo(alice);
      echo(bob);
      for (let i = 0; i < 5; i++) {
        const there = await alice.send({ to: "bob", prompt: `a${i}` });
        const back = await bob.send({ to: "alice", prompt: `b${i}` });
        assert.deepEqual(
          { state: "reply", text: `re: a${i}` },
          pick(await alice.await(there.msg_id, { timeoutMs: 10_000 })),
        );
        assert.deepEqual(
          { state: "reply", text: `re: b${i}` },
          pick(await bob.await(back.msg_id, { timeoutMs: 10_000 })),
        );
      }
    } finally {
      await w.dispose();
    }
  });

  test("three hubs: round trips between all of them, and they agree on list and presence", async () => {
    const w = world();
    try {
      const hubs = [await hubOn(w, "three"), await hubOn(w, "three"), await hubOn(w, "three")];
      const clients = await Promise.all(hubs.map((hub, i) => w.connect(hub, `agent${i}`)));
      for (const [i, client] of clients.entries()) {
        const seen = (await client.list()).map((card) => `${card.name}:${card.status}`).sort();
        const expected = [0, 1, 2]
          .filter((j) => j !== i)
          .map((j) => `agent${j}:online`)
          .sort();
        assert.deepEqual(seen, expected, `hub ${i} lists what the others list`);
      }
      // Round trips between agents on different hubs, all six directions.
      for (const client of clients) echo(client);
      for (const [i, client] of clients.entries()) {
        for (const j of [0, 1, 2].filter((k) => k !== i)) {
          const ack = await client.send({ to: `agent${j}`, prompt: `${i}->${j}` });
          const outcome = await client.await(ack.msg_id, { timeoutMs: 10_000 });
          assert.deepEqual(pick(outcome), { state: "reply", text: `re: ${i}->${j}` });
        }
      }
      // Every hub answers with the same cards for the same caller.
      const lists = await Promise.all(
        hubs.map((hub) => w.connect(hub, { url: hub.url, name: `observer-${hub.port}`, explicit: true })),
      );
      const names = await Promise.all(lists.map(async (c) => (await c.list()).map((x) => x.name).sort()));
      assert.deepEqual(names[0], ["agent0", "agent1", "agent2"]);
      assert.deepEqual(names[1], names[0]);
      assert.deepEqual(names[2], names[0]);
    } finally {
      await w.dispose();
    }
  });

  test("one agent's rate limit holds across hubs: sending through both does not double it", async () => {
    const w = world();
    try {
      const args = ["--store", redis().url, ...CLUSTER_LEASE, "--max-sends-per-sec", "5"];
      const a = await w.startHub({ project: "rate", args });
      const b = await w.startHub({ project: "rate", args });
      const rx = await rawAgent(a.url, TOKEN, "rx");
      const tx = await rawAgent(a.url, TOKEN, "tx");
      const viaB = rawClient(b.url, TOKEN, { id: tx.card.id, agentToken: tx.agentToken });
      let accepted = 0;
      let limited = 0;
      // A burst of 10 is allowed (twice the rate); a limit per hub would let 20 through.
      for (let i = 0; i < 20; i++) {
        const client = i % 2 === 0 ? tx.client : viaB;
        try {
          await client.messages.send.mutate({ to: "rx", prompt: `r${i}` });
          accepted++;
        } catch (error) {
          if ((error as { data?: { coms_code?: string } }).data?.coms_code !== "RATE_LIMITED") throw error;
          limited++;
        }
      }
      assert.ok(limited > 0 && accepted < 20, `accepted ${accepted}, limited ${limited}`);
      assert.ok(rx.card.id);
    } finally {
      await w.dispose();
    }
  });

  test("kill -9 of the recipient's hub in the middle of 2,000 messages: none lost, duplicated or reordered", async () => {
    const w = world();
    try {
      const a = await hubOn(w, "kill");
      const b = await hubOn(w, "kill");
      assert.match(a.output(), /active hub/, "the first hub holds the lease");
      const bob = await w.connect(a, { url: urls(a, b), name: "bob" });
      const alice = await w.connect(b, { url: urls(b, a), name: "alice" });
      const received: number[] = [];
      bob.onInbound((message: Message) => {
        received.push(Number(message.prompt));
        void bob.settle(message.msg_id, { ok: true, text: "ok" }).catch(() => {});
      });
      const total = 2_000;
      for (let i = 0; i < total; i++) {
        if (i === 700) {
          await waitFor(() => received.length >= 600, { what: "bob to receive 600", timeoutMs: 30_000 });
          // Clients spread over their URL lists: kill the hub bob is on, whichever it is.
          await kill9(bob.url === a.url ? a : b);
        }
        await sendSurely(alice, "bob", String(i), ulid());
      }
      await waitFor(() => new Set(received).size >= total, {
        what: "every message at bob",
        timeoutMs: 60_000,
      });
      let outOfOrder = 0;
      for (let i = 1; i < received.length; i++) {
        if ((received[i] as number) < (received[i - 1] as number)) outOfOrder++;
      }
      const counts = {
        lost: total - new Set(received).size,
        duplicated: received.length - new Set(received).size,
        outOfOrder,
      };
      assert.deepEqual(counts, { lost: 0, duplicated: 0, outOfOrder: 0 });
      const survivor = bob.url === a.url ? a : b;
      assert.match(survivor.output(), /active hub/, "the surviving hub serves");
    } finally {
      await w.dispose();
    }
  });

  // SIGTERM: a clean restart. SIGKILL: Redis itself crashes; it wrote the AOF before it answered, so
  // what the hubs had acknowledged is in the file (only a crash of the machine can take the last second).
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`a Redis restart (AOF, ${signal}) keeps agents and queued messages; sends meanwhile are refused`, async () => {
      const w = world();
      const own = await startRedis();
      try {
        const a = await hubOn(w, "restart", { store: own.url });
        const b = await hubOn(w, "restart", { store: own.url });
        const alice = await w.connect(b, { url: urls(b, a), name: "alice" });
        const bob = await w.connect(a, { url: urls(a, b), name: "bob" });
        const inbound: Message[] = [];
        bob.onInbound((message: Message) => inbound.push(message));
        const sent: string[] = [];
        for (let i = 0; i < 20; i++) sent.push((await alice.send({ to: "bob", prompt: `q${i}` })).msg_id);
        await waitFor(() => inbound.length === 20, { what: "bob to get 20" });
        await own.stop(signal);
        await assert.rejects(alice.send({ to: "bob", prompt: "while down" }), (error: ComsError) => {
          assert.equal(error.code, "UNAVAILABLE");
          return true;
        });
        await own.restart();
        // The same agents, the same unanswered messages: bob answers them now.
        await waitFor(
          async () => {
            try {
              await bob.settle(sent[0] as string, { ok: true, text: "first" });
              return true;
            } catch {
              return false;
            }
          },
          { what: "the cluster to serve again", timeoutMs: 30_000 },
        );
        for (const id of sent.slice(1)) await bob.settle(id, { ok: true, text: "later" });
        const outcomes = await Promise.all(sent.map((id) => alice.await(id, { timeoutMs: 10_000 })));
        assert.deepEqual(
          outcomes.map((o) => (o.state === "error" ? `${o.state} ${o.code} ${o.message}` : o.state)),
          sent.map(() => "reply"),
        );
      } finally {
        await w.dispose();
        await own.dispose();
      }
    });
  }

  test("a hub started while Redis is down refuses sends clearly, then serves", async () => {
    const w = world();
    const own = await startRedis({ password: "secret-pass-42" });
    try {
      await own.stop("SIGTERM");
      const hub = await hubOn(w, "late", { store: own.url });
      const refused = await raw(hub.url, "/trpc/messages.send", {
        token: TOKEN,
        body: JSON.stringify({ json: { to: "x", prompt: "y" } }),
      });
      assert.equal(refused.status, 500);
      assert.match(refused.text, /UNAVAILABLE/);
      assert.match(refused.text, /Redis is down/);
      assert.equal(JSON.parse(refused.text).error.json.data.coms_code, "UNAVAILABLE");
      assert.match(hub.output(), /redis store at redis:\/\/:\*\*\*@127\.0\.0\.1/);
      await own.restart();
      await waitFor(() => /active hub/.test(hub.output()), {
        what: "the hub to take the lease",
        timeoutMs: 30_000,
      });
      const alice = await w.connect(hub, "alice");
      const bob = await w.connect(hub, "bob");
      echo(bob);
      const ack = await alice.send({ to: "bob", prompt: "late" });
      assert.equal((await alice.await(ack.msg_id, { timeoutMs: 10_000 })).state, "reply");
      assert.doesNotMatch(hub.output(), /secret-pass/, "the Redis password is never printed");
    } finally {
      await w.dispose();
      await own.dispose();
    }
  });
});

function pick(outcome: { state: string; text?: string } & Record<string, unknown>) {
  return { state: outcome.state, text: outcome.text };
}

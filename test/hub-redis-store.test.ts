/**
 * The Redis store on a real redis-server: what a hub writes is what the next
 * hub loads, and a hub that lost the project lease cannot write at all.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ComsError } from "../contract/errors.ts";
import { Lease } from "../hub/cluster/lease.ts";
import { openRedis, type RedisConnection, redactRedisUrl } from "../hub/cluster/redis-connection.ts";
import { openRedisStore } from "../hub/store/redis.ts";
import { redisKeys } from "../hub/store/redis-keys.ts";
import type { AgentRecord, MessageRecord } from "../hub/store/store.ts";
import { waitFor } from "./support/hub-harness.ts";
import { type RedisServer, startRedis } from "./support/redis-server.ts";

let server: RedisServer;
let redis: RedisConnection;
before(async () => {
  server = await startRedis();
  redis = openRedis(server.url, () => {});
  await waitFor(() => redis.isReady, { what: "redis" });
});
after(async () => {
  redis?.destroy();
  await server?.dispose();
});

function agent(id: string): AgentRecord {
  return {
    card: {
      id,
      name: `n-${id}`,
      purpose: "",
      model: "",
      explicit: false,
      project: "p",
      context_used_pct: null,
      queue_depth: 0,
      status: "online",
      started_at: 1,
    },
    token_hash: "ab".repeat(32),
    last_seen: 5,
  };
}

function message(id: string, seq: number): MessageRecord {
  return {
    message: {
      msg_id: id,
      from: "a",
      from_id: "A",
      to: "b",
      to_id: "B",
      prompt: `p${id}`,
      hops: 1,
      created_at: 2,
    },
    state: "queued",
    expires_at: 99,
    deliver_seq: seq,
  };
}

test("what one lease holder writes, the next one loads (same epoch, sequence)", async () => {
  const keys = redisKeys("roundtrip");
  const first = new Lease(redis, keys.lease, 10_000);
  assert.ok(await first.acquire());
  const store = await openRedisStore({ redis, keys, leaseToken: first.token });
  assert.deepEqual([store.loadAgents(), store.loadMessages()], [[], []]);
  store.putAgent(agent("A"));
  store.putAgent(agent("B"));
  store.putMessage(message("m1", 1));
  store.putMessage(message("m2", 2));
  store.setLastSeq(7);
  await store.flush();
  store.deleteAgent("B");
  store.deleteMessage("m1");
  await store.flush();
  store.close();
  await first.release();

  const second = new Lease(redis, keys.lease, 10_000);
  assert.ok(await second.acquire(), "a released lease is free at once");
  const again = await openRedisStore({ redis, keys, leaseToken: second.token });
  assert.equal(again.epoch, store.epoch);
  assert.equal(again.lastSeq, 7);
  assert.deepEqual(again.loadAgents(), [agent("A")]);
  assert.deepEqual(again.loadMessages(), [message("m2", 2)]);
  await second.release();
  assert.ok(Object.keys(await redis.hGetAll(keys.agents)).length > 0);
  assert.ok(
    (await redis.keys("*")).every((key) => key.startsWith("pi-coms:{")),
    "every key is under the project prefix",
  );
});

test("a hub that lost the lease cannot write: its flush fails and Redis keeps the new holder's data", async () => {
  const keys = redisKeys("fenced");
  const old = new Lease(redis, keys.lease, 10_000);
  assert.ok(await old.acquire());
  const failures: Error[] = [];
  const stale = await openRedisStore({
    redis,
    keys,
    leaseToken: old.token,
    onFailure: (error) => failures.push(error),
  });
  stale.putMessage(message("before", 1));
  await stale.flush();
  // The lease expires under the old holder (a long pause) and another hub takes it.
  await redis.del(keys.lease);
  const current = new Lease(redis, keys.lease, 10_000);
  assert.ok(await current.acquire());
  const fresh = await openRedisStore({ redis, keys, leaseToken: current.token });
  assert.deepEqual(
    fresh.loadMessages().map((m) => m.message.msg_id),
    ["before"],
  );
  fresh.putMessage(message("new", 2));
  await fresh.flush();

  stale.putMessage(message("late", 3));
  stale.deleteMessage("new");
  await assert.rejects(stale.flush(), (error: ComsError) => {
    assert.equal((error.cause as ComsError).code, "UNAVAILABLE");
    assert.match(error.message, /lost the project lease/);
    return true;
  });
  assert.equal(failures.length, 1, "the cluster hears of it once");
  assert.ok(stale.failed);
  await assert.rejects(stale.flush(), /lost the project lease/, "and every later flush fails too");
  assert.deepEqual(Object.keys(await redis.hGetAll(keys.messages)).sort(), ["before", "new"]);
  await current.release();
});

test("a Redis URL is printed without its password", () => {
  assert.equal(redactRedisUrl("redis://user:s3cret@host:6380/2"), "redis://user:***@host:6380/2");
  assert.equal(redactRedisUrl("rediss://host:6380"), "rediss://host:6380");
});

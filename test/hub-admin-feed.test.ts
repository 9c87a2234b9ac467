/**
 * The admin feed behind the dashboard, on a real HubBackend and store in this
 * process (the HTTP side is covered by hub-dashboard-http and the browser
 * test): the history cap, dropping a reader that does not keep up, and a
 * restarted hub showing the messages still waiting.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { AdminEvent } from "../contract/admin.ts";
import type { Caller } from "../contract/router.ts";
import { HubBackend } from "../hub/backend/backend.ts";
import { AdminFeed } from "../hub/observe/admin-feed.ts";
import { openStore } from "../hub/store/store.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";

async function agent(backend: HubBackend, name: string): Promise<Caller> {
  const { card } = await backend.register({ name });
  return { id: card.id, name: card.name };
}

async function first(feed: AdminFeed): Promise<AdminEvent> {
  const iterator = feed.watch(undefined)[Symbol.asyncIterator]();
  const { value } = await iterator.next();
  await iterator.return?.();
  return value as AdminEvent;
}

describe("admin feed (real backend and store, in process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-feed-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the newest settled messages up to the cap, and every unanswered one", async () => {
    const backend = new HubBackend(await openStore("memory", dir), "p", TEST_LIMITS);
    const feed = new AdminFeed(backend, { content: true, historyRows: 5 });
    const a = await agent(backend, "a");
    const b = await agent(backend, "b");
    const answered: string[] = [];
    for (let i = 0; i < 12; i++) {
      const ack = await backend.send(a, { to: "b", prompt: `m${i}`, hops: 0 });
      await backend.settle(b, { msg_id: ack.msg_id, result: { ok: true, text: `r${i}` } });
      answered.push(ack.msg_id);
    }
    const open = await backend.send(a, { to: "b", prompt: "still open", hops: 0 });
    const snapshot = await first(feed);
    assert.equal(snapshot.kind, "snapshot");
    if (snapshot.kind !== "snapshot") return;
    const ids = snapshot.messages.map((row) => row.msg_id);
    assert.deepEqual(ids, [...answered.slice(-5), open.msg_id]);
    assert.equal(snapshot.agents.find((card) => card.name === "b")?.queue_depth, 1);
    assert.deepEqual(backend.queueDepths(), new Map([["b", 1]]));
    feed.close();
    await backend.close();
  });

  it("follows the hub only while watched: a watcher subscribing mid-stream gets the state, then the changes", async () => {
    const backend = new HubBackend(await openStore("memory", dir), "p", TEST_LIMITS);
    const feed = new AdminFeed(backend, { content: true, batchMs: 1 });
    // Nobody watches: the feed does not listen (no work per message).
    assert.equal(backend.events.active, false);
    const a = await agent(backend, "a");
    const b = await agent(backend, "b");
    const answered = await backend.send(a, { to: "b", prompt: "answered", hops: 0 });
    await backend.settle(b, { msg_id: answered.msg_id, result: { ok: true, text: "the reply" } });
    const taken = await backend.send(a, { to: "b", prompt: "taken", hops: 0 });
    await backend.ack(b, [taken.msg_id]);
    const waiting = await backend.send(a, { to: "b", prompt: "waiting", hops: 0 });

    const iterator = feed.watch(undefined)[Symbol.asyncIterator]();
    const snapshot = (await iterator.next()).value as AdminEvent;
    assert.equal(backend.events.active, true);
    if (snapshot.kind !== "snapshot") assert.fail("no snapshot");
    const rows = new Map(snapshot.messages.map((row) => [row.msg_id, row]));
    assert.deepEqual([...rows.keys()], [answered.msg_id, taken.msg_id, waiting.msg_id]);
    const done = rows.get(answered.msg_id);
    assert.equal(done?.state, "replied");
    assert.equal(done?.bytes, Buffer.byteLength("answered"));
    assert.equal(done?.reply_bytes, Buffer.byteLength("the reply"));
    assert.equal(done?.reply_preview, "the reply");
    assert.equal(typeof done?.settled_at, "number");
    assert.equal(rows.get(taken.msg_id)?.state, "delivered");
    assert.equal(rows.get(waiting.msg_id)?.state, "queued");
    assert.equal(rows.get(waiting.msg_id)?.prompt_preview, "waiting");
    assert.equal(snapshot.agents.find((card) => card.name === "b")?.queue_depth, 2);

    // What happens after the snapshot arrives as changes.
    await backend.settle(b, { msg_id: taken.msg_id, result: { ok: true, text: "late" } });
    // The batch timer does not hold the process open (a hub's server does); this test's wait does.
    const keepAlive = setInterval(() => {}, 1000);
    const changes = (await iterator.next()).value as AdminEvent;
    clearInterval(keepAlive);
    if (changes.kind !== "changes") assert.fail("no changes");
    assert.equal(changes.messages.find((row) => row.msg_id === taken.msg_id)?.state, "replied");
    assert.equal(changes.agents.find((card) => card.name === "b")?.queue_depth, 1);

    // The last watcher left: the feed stops following and forgets.
    await iterator.return?.();
    assert.equal(backend.events.active, false);
    assert.equal(feed.subscriberCount, 0);
    const again = await first(feed);
    if (again.kind !== "snapshot") assert.fail("no snapshot");
    assert.equal(again.agents.find((card) => card.name === "b")?.queue_depth, 1);
    feed.close();
    await backend.close();
  });

  it("drops a reader that falls too far behind, and forgets it", async () => {
    const backend = new HubBackend(await openStore("memory", dir), "p", TEST_LIMITS);
    const feed = new AdminFeed(backend, { content: true, batchMs: 1, maxBacklog: 2 });
    const iterator = feed.watch(undefined)[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.kind, "snapshot");
    assert.equal(feed.subscriberCount, 1);
    // Changes in separate batches while the reader reads nothing.
    for (let i = 0; i < 5; i++) {
      await agent(backend, `x${i}`);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    const kinds: string[] = [];
    while (true) {
      const { value, done } = await iterator.next();
      if (done) break;
      kinds.push(value.kind);
    }
    // What was queued before the cut is still delivered; then the stream ends (the browser reconnects).
    assert.deepEqual(kinds, ["changes", "changes"]);
    assert.equal(feed.subscriberCount, 0);
    feed.close();
    await backend.close();
  });

  it("after a restart, shows the messages still waiting and the queue they make", async () => {
    const storeDir = join(dir, "restart");
    const before = new HubBackend(await openStore("sqlite", storeDir), "p", TEST_LIMITS);
    const a = await agent(before, "a");
    const b = await agent(before, "b");
    const ack = await before.send(a, { to: "b", prompt: "survives", hops: 0 });
    await before.ack(b, [ack.msg_id]);
    await before.close();

    const backend = new HubBackend(await openStore("sqlite", storeDir), "p", TEST_LIMITS);
    const feed = new AdminFeed(backend, { content: true });
    const snapshot = await first(feed);
    if (snapshot.kind !== "snapshot") assert.fail("no snapshot");
    const row = snapshot.messages.find((m) => m.msg_id === ack.msg_id);
    assert.equal(row?.state, "delivered");
    assert.equal(row?.prompt_preview, "survives");
    assert.equal(snapshot.agents.find((card) => card.name === "b")?.queue_depth, 1);
    feed.close();
    await backend.close();
  });
});

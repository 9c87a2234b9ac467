/**
 * The sweep on a real HubBackend and store in this process, with the clock
 * handed to sweep(): unanswered messages expire at their TTL and not before,
 * a tombstone whose reply was taken goes after the retention, one whose reply
 * waits for its sender after the TTL, and messages restored from the store
 * are swept the same way.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Caller } from "../contract/router.ts";
import { type HeldMessage, HubBackend } from "../hub/backend/backend.ts";
import { DueQueue } from "../hub/backend/due-queue.ts";
import { TAKEN_RETENTION_MS } from "../hub/backend/limits.ts";
import { openStore } from "../hub/store/store.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";

const TTL = 2 * TAKEN_RETENTION_MS;
const LIMITS = { ...TEST_LIMITS, messageTtlMs: TTL, staleAfterMs: 10 * TTL, offlineAfterMs: 20 * TTL };

async function agent(backend: HubBackend, name: string): Promise<Caller> {
  const { card } = await backend.register({ name });
  return { id: card.id, name: card.name };
}

function held(backend: HubBackend): Map<string, HeldMessage> {
  return new Map(backend.snapshot().messages.map((m) => [m.message.msg_id, m]));
}

describe("sweep: expiry and purge by time (real backend and store, in process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-purge-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("expires at the TTL and purges tombstones at their retention, not before", async () => {
    const backend = new HubBackend(await openStore("memory", dir), "p", LIMITS);
    const a = await agent(backend, "a");
    const b = await agent(backend, "b");
    const start = Date.now();
    const untaken = await backend.send(a, { to: "b", prompt: "reply not taken", hops: 0 });
    await backend.settle(b, { msg_id: untaken.msg_id, result: { ok: true, text: "r1" } });
    const taken = await backend.send(a, { to: "b", prompt: "reply taken", hops: 0 });
    await backend.settle(b, { msg_id: taken.msg_id, result: { ok: true, text: "r2" } });
    await backend.ack(a, [taken.msg_id]);
    const open = await backend.send(a, { to: "b", prompt: "never answered", hops: 0 });
    const end = Date.now();

    backend.sweep(start + TAKEN_RETENTION_MS - 1);
    assert.deepEqual([...held(backend).keys()], [untaken.msg_id, taken.msg_id, open.msg_id]);
    backend.sweep(end + TAKEN_RETENTION_MS);
    assert.deepEqual([...held(backend).keys()], [untaken.msg_id, open.msg_id]);

    backend.sweep(start + TTL - 1);
    assert.equal(held(backend).get(open.msg_id)?.state, "queued");
    assert.ok(held(backend).has(untaken.msg_id));
    backend.sweep(end + TTL);
    const left = held(backend);
    assert.equal(left.has(untaken.msg_id), false);
    // Expired now; its tombstone keeps the EXPIRED outcome for its sender for a TTL from now.
    assert.equal(left.get(open.msg_id)?.state, "final");
    assert.equal(left.get(open.msg_id)?.outcome?.state, "error");
    const outcome = await backend.get(a, open.msg_id);
    assert.equal(outcome.state === "error" && outcome.code, "EXPIRED");
    backend.sweep(Date.now() + TTL);
    assert.equal(held(backend).size, 0);
    await backend.close();
  });

  it("sweeps messages restored from the store the same way", async () => {
    const storeDir = join(dir, "restart");
    const before = new HubBackend(await openStore("sqlite", storeDir), "p", LIMITS);
    const a = await agent(before, "a");
    const b = await agent(before, "b");
    const start = Date.now();
    const answered = await before.send(a, { to: "b", prompt: "answered", hops: 0 });
    await before.settle(b, { msg_id: answered.msg_id, result: { ok: true, text: "r" } });
    const open = await before.send(a, { to: "b", prompt: "waiting", hops: 0 });
    const end = Date.now();
    await before.close();

    const backend = new HubBackend(await openStore("sqlite", storeDir), "p", LIMITS);
    backend.sweep(start + TTL - 1);
    assert.deepEqual([...held(backend).keys()], [answered.msg_id, open.msg_id]);
    backend.sweep(end + TTL);
    const left = held(backend);
    assert.equal(left.has(answered.msg_id), false);
    assert.equal(left.get(open.msg_id)?.state, "final");
    backend.sweep(Date.now() + TTL);
    assert.equal(held(backend).size, 0);
    await backend.close();
  });

  it("a due queue hands out what is due in order, across its compaction", () => {
    const queue = new DueQueue(() => true);
    for (let i = 0; i < 3000; i++) queue.push(i, `m${i}`);
    const taken: string[] = [];
    queue.takeDue(1999, (id) => taken.push(id));
    assert.equal(taken.length, 2000);
    assert.equal(taken.at(-1), "m1999");
    assert.equal(queue.size, 1000);
    queue.push(5000, "late");
    queue.takeDue(2001, (id) => taken.push(id));
    assert.deepEqual(taken.slice(2000), ["m2000", "m2001"]);
    queue.takeDue(Number.POSITIVE_INFINITY, (id) => taken.push(id));
    assert.equal(taken.at(-1), "late");
    assert.equal(queue.size, 0);
  });

  it("a due queue drops entries that no longer matter once they are most of it, keeping the order", () => {
    const settled = new Set<string>();
    const queue = new DueQueue((id) => !settled.has(id));
    // A long delay: without dropping them it would hold every message of the whole delay.
    for (let i = 0; i < 10_000; i++) {
      queue.push(1_000_000 + i, `m${i}`);
      if (i % 100 !== 0) {
        settled.add(`m${i}`);
        queue.forgot();
      }
    }
    assert.ok(queue.size < 2200, `holds ${queue.size} entries for 100 that matter`);
    const taken: string[] = [];
    queue.takeDue(Number.POSITIVE_INFINITY, (id) => {
      if (!settled.has(id)) taken.push(id);
    });
    assert.deepEqual(
      taken,
      Array.from({ length: 100 }, (_, k) => `m${k * 100}`),
    );
  });
});

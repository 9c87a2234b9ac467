/** The client's ack batcher: lone calls at most one per window, riders take what is pending, settled ids need none. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AckBatcher } from "../hub/client/ack-batcher.ts";

/** A send whose calls stay open until released, recording each call's ids. */
function heldSend() {
  const calls: string[][] = [];
  const releases: Array<() => void> = [];
  const send = (ids: string[]) =>
    new Promise<void>((resolve) => {
      calls.push(ids);
      releases.push(resolve);
    });
  return { calls, send, release: () => releases.shift()?.() };
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe("ack batcher", () => {
  it("ids arriving while a call is in flight wait for the next window, not go at once after it", async () => {
    const held = heldSend();
    // A window far longer than the test: only an explicit flush sends.
    const acks = new AckBatcher(held.send, 600_000);
    acks.add("a");
    const first = acks.flush();
    assert.deepEqual(held.calls, [["a"]]);
    acks.add("b");
    acks.add("c");
    held.release();
    await turns(5);
    assert.equal(held.calls.length, 1, "no second call right after the first");
    await first;
    assert.equal(acks.size, 2);
    const second = acks.flush();
    held.release();
    await second;
    assert.deepEqual(held.calls, [["a"], ["b", "c"]]);
  });

  it("a call that carries the pending ids leaves nothing for a lone call; settled ids are dropped", async () => {
    const held = heldSend();
    const acks = new AckBatcher(held.send, 600_000);
    acks.add("a");
    acks.add("b");
    acks.drop("a");
    assert.deepEqual(acks.take(), ["b"]);
    assert.equal(acks.take(), undefined);
    await acks.flush();
    assert.equal(held.calls.length, 0);
    // The carrying call failed: they are pending again.
    acks.restore(["b"]);
    assert.equal(acks.size, 1);
  });
});

/**
 * Call timeouts on one timer (peer/deadlines.ts): each call expires once, in
 * the order the calls started, a finished call never does, and the timer
 * holds the process open only while a call waits.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Deadlines } from "../peer/deadlines.ts";

const refTimers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

describe("call deadlines", () => {
  it("expires waiting calls in the order they started, and only those", async () => {
    const expired: number[] = [];
    let wake: () => void = () => {};
    const allDone = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const deadlines = new Deadlines<number>(30, (id) => {
      expired.push(id);
      if (expired.length === 3) wake();
    });
    deadlines.add(1);
    deadlines.add(2);
    deadlines.add(3);
    deadlines.delete(2);
    // Started after the first timer was armed: its own deadline is later than the first's.
    await new Promise((resolve) => setTimeout(resolve, 10));
    deadlines.add(4);
    await allDone;
    assert.deepEqual(expired, [1, 3, 4]);
    deadlines.clear();
  });

  it("a call added while an expiry runs still gets its own deadline", async () => {
    const expired: string[] = [];
    let wake: () => void = () => {};
    const allDone = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const deadlines = new Deadlines<string>(20, (id) => {
      expired.push(id);
      if (id === "first") deadlines.add("retry");
      else wake();
    });
    deadlines.add("first");
    await allDone;
    assert.deepEqual(expired, ["first", "retry"]);
    deadlines.clear();
  });

  it("keeps the process alive only while a call waits", () => {
    const before = refTimers();
    const deadlines = new Deadlines<number>(60_000, () => {});
    deadlines.add(1);
    assert.equal(refTimers(), before + 1);
    deadlines.delete(1);
    assert.equal(refTimers(), before, "no call waits: the timer must not hold the process open");
    deadlines.add(2);
    assert.equal(refTimers(), before + 1);
    deadlines.clear();
    assert.equal(refTimers(), before);
  });
});

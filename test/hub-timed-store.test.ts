/**
 * The store flush timing behind pi_coms_store_flush_seconds, on a real SQLite
 * store: requests that wait on the same commit are one flush, observed once.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { timedStore } from "../hub/observe/timed-store.ts";
import { openStore } from "../hub/store/store.ts";

describe("timed store flushes (real SQLite store)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-timed-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("observes one commit once, however many wait on it, and the next commit again", async () => {
    const observed: number[] = [];
    const store = timedStore(await openStore("sqlite", dir), (ms) => observed.push(ms));
    store.setLastSeq(1);
    await Promise.all([store.flush(), store.flush(), store.flush()]);
    assert.equal(observed.length, 1);
    store.setLastSeq(2);
    await Promise.all([store.flush(), store.flush()]);
    assert.equal(observed.length, 2);
    assert.ok(observed.every((ms) => ms >= 0));
    store.close();
  });
});

/**
 * A hub that closes right after an agent left still tells the agents it
 * ends streams for that the agent left (the coalesced peers broadcast is
 * sent, not dropped), so nobody keeps it listed "as last seen". Real
 * HubBackend and store in this process: leave and close in one go, no timing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HubBackend } from "../hub/backend/backend.ts";
import { openStore } from "../hub/store/store.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";

describe("hub close (real backend and store, in process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-close-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("sends who just left before it ends the streams", async () => {
    const backend = new HubBackend(await openStore("memory", dir), "p", TEST_LIMITS);
    const stay = (await backend.register({ name: "stay" })).card;
    const gone = (await backend.register({ name: "gone" })).card;
    const removed: string[] = [];
    const read = (async () => {
      for await (const item of backend.inbox({ id: stay.id, name: stay.name }, null, undefined)) {
        if (item.event.kind === "peers") removed.push(...(item.event.removed ?? []));
      }
    })();
    await backend.leave({ id: gone.id, name: gone.name });
    await backend.close();
    await read;
    assert.deepEqual(removed, [gone.id]);
  });
});

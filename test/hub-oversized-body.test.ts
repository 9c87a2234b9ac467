/**
 * A body over the hub's limit gets a 413 the client can read, on every route and
 * both runtimes: Bun's own body cap closes the socket with the body unread, which
 * a client sees as EPIPE or a reset instead of an answer.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { HubWorld, type Runtime } from "./support/hub-harness.ts";

const worlds: HubWorld[] = [];
after(() => Promise.all(worlds.map((world) => world.dispose())));

// The default limit is 2 × 256 KiB + 64 KiB; 2 MiB is well past it, and past what socket buffers hide.
const OVERSIZED = JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) });

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`oversized bodies (${runtime} hub)`, () => {
    it("answer 413 on the tRPC, /mcp and dashboard routes, every time", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const routes = ["/trpc/agents.register", "/mcp", "/dashboard/sign-in"];
      for (let round = 0; round < 20; round++) {
        for (const path of routes) {
          const response = await fetch(new URL(path, hub.url), {
            method: "POST",
            headers: {
              authorization: `Bearer ${hub.token}`,
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
            },
            body: OVERSIZED,
          });
          await response.arrayBuffer();
          assert.equal(response.status, 413, `${path} round ${round}`);
        }
      }
      const health = await fetch(new URL("/healthz", hub.url));
      assert.equal(health.status, 200, "the hub still serves");
    });
  });
}

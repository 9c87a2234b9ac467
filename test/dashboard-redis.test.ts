/**
 * The dashboard on a Redis deployment: every hub's public port forwards to
 * the hub holding the lease (rewriting Host on the way), and an operator may
 * open any of them. Real Chromium signs in, sees the live feed and signs out
 * through each of two hubs on one real redis-server.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { openAdminStream, sessionHeader } from "./support/admin-feed.ts";
import { launchBrowser, type TestBrowser } from "./support/browser.ts";
import { consoleLog, signInPage } from "./support/dashboard-page.ts";
import { type HubProcess, HubWorld, waitFor } from "./support/hub-harness.ts";
import { type RedisServer, startRedis } from "./support/redis-server.ts";

const TOKEN = "dashboard-redis-test-token-0123456789";

describe("the dashboard through each hub of a Redis cluster (Chromium, two hubs, real Redis)", () => {
  let redis: RedisServer;
  let world: HubWorld;
  let browser: TestBrowser;
  let hubs: HubProcess[];

  before(async () => {
    redis = await startRedis();
    world = new HubWorld({ PI_COMS_NET_AUTH_TOKEN: TOKEN });
    const args = ["--port", "0", "--store", redis.url, "--lease-ms", "2000"];
    hubs = [await world.startHub({ project: "dash", args }), await world.startHub({ project: "dash", args })];
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await world?.dispose();
    await redis?.dispose();
  });

  it("signs in, shows the live feed and signs out through either hub", async () => {
    for (const [i, hub] of hubs.entries()) {
      const page = await browser.context.newPage();
      const log = consoleLog(page);
      const [answer] = await Promise.all([
        page.waitForResponse("**/dashboard/sign-in"),
        signInPage(page, hub.url, TOKEN),
      ]);
      assert.equal(answer.status(), 200, `sign-in through hub ${i + 1}`);
      const { session } = (await answer.json()) as { session: string };
      // Live: an agent that joins (on the other hub) shows up without a reload.
      const other = hubs[1 - i] as HubProcess;
      const agent = await world.connect(other, { name: `joined-while-watching-${i + 1}` });
      await page.waitForSelector(`.agent[data-agent="joined-while-watching-${i + 1}"][data-status="online"]`);
      const peer = await world.connect(hub, { name: `asks-${i + 1}` });
      const ack = await peer.send({ to: agent.self.name, prompt: `through hub ${i + 1}` });
      await page.waitForSelector(`.msg[data-msg="${ack.msg_id}"]`);
      await page.click("#sign-out");
      await page.waitForSelector("#sign-in");
      await waitFor(
        async () =>
          (await openAdminStream(hub.url, sessionHeader(session)).catch((e: Error) => e)) instanceof Error,
        { what: "the session to end" },
      );
      assert.deepEqual(
        log.filter((m) => m.type === "error" || m.type === "pageerror"),
        [],
      );
      await page.close();
    }
  });
});

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Message } from "../contract/schemas.ts";
import type { HubClient } from "../hub/client/hub-client.ts";
import { openAdminStream, sessionHeader } from "./support/admin-feed.ts";
import { launchBrowser, type TestBrowser } from "./support/browser.ts";
import { consoleLog, signInPage } from "./support/dashboard-page.ts";
import { type HubProcess, HubWorld, ROOT, waitFor } from "./support/hub-harness.ts";
import { CuttableProxy } from "./support/hub-proxy.ts";

/** Git-ignored; the docs' pictures are copies of some of these. */
const SHOTS = join(ROOT, ".tmp", "screenshots");

describe("the hub dashboard in a real browser (Chromium, real hub, real agents)", () => {
  let world: HubWorld;
  let hub: HubProcess;
  let browser: TestBrowser;

  before(async () => {
    world = new HubWorld();
    hub = await world.startHub({ args: ["--port", "0"] });
    browser = await launchBrowser();
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await world?.dispose();
  });

  it("refuses a wrong token and shows nothing without signing in", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${hub.url}/`);
    assert.equal(await page.locator("#sign-in").isVisible(), true);
    assert.equal(await page.locator("#agents").isVisible(), false, "no dashboard before signing in");
    await page.fill("#secret", "not-the-token-at-all");
    const [response] = await Promise.all([
      page.waitForResponse("**/dashboard/sign-in"),
      page.click("#sign-in-button"),
    ]);
    assert.equal(response.status(), 401);
    await page.waitForSelector("#sign-in-error:not([hidden])");
    assert.match((await page.locator("#sign-in-error").textContent()) ?? "", /wrong hub token/);
    assert.equal(await page.locator("#agents").isVisible(), false);
    // Nor can the page reach the feed or the metrics (the scripts are public: they hold no data).
    const probes = await page.evaluate(async () => ({
      feed: (await fetch("/trpc/admin.watch")).status,
      metrics: (await fetch("/metrics")).status,
    }));
    assert.deepEqual(probes, { feed: 401, metrics: 401 });
    assert.deepEqual(await browser.context.cookies(), [], "no cookie, ever");
    await page.screenshot({ path: join(SHOTS, "dashboard-refused.png") });
    await page.close();
  });

  it("signs in with a clean console, then shows agents, a message and its reply live", async () => {
    const page = await browser.context.newPage();
    const log = consoleLog(page);
    const refused: string[] = [];
    page.on("response", (response) => {
      if (response.status() >= 400) refused.push(`${response.status()} ${response.url()}`);
    });
    await signInPage(page, hub.url, hub.token);
    assert.deepEqual(await browser.context.cookies(), []);
    assert.ok(!page.url().includes(hub.token), "the token is in no URL");

    const alice = await world.connect(hub, { name: "alice", purpose: "plans the work", color: "#e3b341" });
    const bob = await world.connect(hub, {
      name: "bob",
      purpose: "reviews code",
      model: "m-review",
      color: "#58a6ff",
    });
    const carol = await world.connect(hub, { name: "carol", purpose: "runs tests", color: "#f778ba" });
    await page.waitForSelector('.agent[data-agent="alice"][data-status="online"]');
    await page.waitForSelector('.agent[data-agent="bob"]');
    assert.match(
      (await page.locator('.agent[data-agent="bob"]').textContent()) ?? "",
      /reviews code[\s\S]*m-review/,
    );

    const inbound: Message[] = [];
    bob.onInbound((message) => inbound.push(message));
    const ack = await alice.send({ to: "bob", prompt: "please review PR 7", conversation_id: "review-7" });
    const row = page.locator(`.msg[data-msg="${ack.msg_id}"]`);
    await row.waitFor();
    await waitFor(() => inbound.length === 1, { what: "bob's inbound message" });
    // bob's client acknowledges receipt: the same row turns delivered, and alice shows as waiting on bob.
    await page.waitForSelector(`.msg[data-msg="${ack.msg_id}"][data-state="delivered"]`);
    await page.waitForSelector('#waiting li[data-from="alice"][data-to="bob"]');
    await page.waitForSelector('#graph .edge[data-from="alice"][data-to="bob"][data-cycle="false"]');
    assert.match((await row.textContent()) ?? "", /alice[\s\S]*bob[\s\S]*please review PR 7/);

    // bob delegates part of it to carol in the same conversation, then answers alice.
    const sub = await bob.send({
      to: "carol",
      prompt: "run the tests for PR 7",
      conversation_id: "review-7",
    });
    await page.waitForSelector(`.msg[data-msg="${sub.msg_id}"]`);
    await bob.settle(ack.msg_id, { ok: true, text: "looks good, tests pending" });
    await page.waitForSelector(`.msg[data-msg="${ack.msg_id}"][data-state="replied"]`);
    const trail = (await row.locator(".trail").textContent()) ?? "";
    assert.match(trail, /queued → delivered \d+ ms → replied/);
    assert.match((await row.textContent()) ?? "", /looks good/);
    // The summaries redraw about once a second: wait for them rather than read them at once.
    await page.waitForFunction(
      () => document.querySelectorAll('.conversation[data-key="conversation review-7"] li').length === 2,
    );
    // carol has not answered: bob is waiting on carol now, alice on nobody.
    await page.waitForSelector('#waiting li[data-from="bob"][data-to="carol"]');
    await page.waitForSelector('#waiting li[data-from="alice"]', { state: "detached" });
    await page.waitForSelector('#graph .edge[data-from="alice"]', { state: "detached" });

    // An error outcome shows with its code.
    carol.onInbound((message) => {
      void carol.settle(message.msg_id, { ok: false, code: "BAD_INPUT", message: "no such PR" });
    });
    await page.waitForSelector(`.msg[data-msg="${sub.msg_id}"][data-state="error"]`);
    assert.match(
      (await page.locator(`.msg[data-msg="${sub.msg_id}"]`).textContent()) ?? "",
      /error BAD_INPUT/,
    );

    // Leaving removes the card.
    const dave: HubClient = await world.connect(hub, { name: "dave" });
    await page.waitForSelector('.agent[data-agent="dave"]');
    await dave.close();
    await page.waitForSelector('.agent[data-agent="dave"]', { state: "detached" });
    await page.waitForSelector('.conversation li[data-state="error"]');

    // A signed-in operator's console stayed clean, and nothing the page asked for was refused.
    assert.deepEqual(
      log.filter((m) => m.type === "error" || m.type === "warning" || m.type === "pageerror"),
      [],
    );
    assert.deepEqual(refused, []);
    await page.close();
  });

  it("a quiet feed stays open through the hub's pings (one connection, no reconnect)", async () => {
    const page = await browser.context.newPage();
    await signInPage(page, hub.url, hub.token);
    type Stats = { opens: number; pings: number };
    const stats = () =>
      page.evaluate(() => (window as unknown as { piComsDashboard: { stats: Stats } }).piComsDashboard.stats);
    // The hub pings a quiet stream every 15 s.
    await page.waitForFunction(
      () => (window as unknown as { piComsDashboard: { stats: Stats } }).piComsDashboard.stats.pings >= 1,
      undefined,
      { timeout: 45_000 },
    );
    assert.equal((await stats()).opens, 1);
    assert.equal(await page.locator("#link").getAttribute("data-link"), "live");
    await page.close();
  });

  it("signs out: the page forgets the session and the hub ends it", async () => {
    const page = await browser.context.newPage();
    const [answer] = await Promise.all([
      page.waitForResponse("**/dashboard/sign-in"),
      signInPage(page, hub.url, hub.token),
    ]);
    const { session } = (await answer.json()) as { session: string };
    await page.click("#sign-out");
    await page.waitForSelector("#sign-in");
    assert.equal(await page.locator("#agents").isVisible(), false);
    await waitFor(
      async () =>
        (await openAdminStream(hub.url, sessionHeader(session)).catch((e: Error) => e)) instanceof Error,
      { what: "the session to end" },
    );
    await page.close();
  });

  it("no other server on the host gets a usable credential; a second hub's sign-in leaves the first alone", async () => {
    // Another local server, as any local user could run: it records what browsers send it.
    const received: IncomingHttpHeaders[] = [];
    const other = createServer((req, res) => {
      received.push(req.headers);
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>another server</title><p>another server on this host</p>");
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    world.defer(() => new Promise<void>((resolve) => other.close(() => resolve())));
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    // The hub through a relay this test can cut, so the page's feed has to reconnect later.
    const relay = await CuttableProxy.start(hub.port);
    world.defer(() => relay.close());

    const page = await browser.context.newPage();
    const [answer] = await Promise.all([
      page.waitForResponse("**/dashboard/sign-in"),
      signInPage(page, relay.url, hub.token),
    ]);
    const { session } = (await answer.json()) as { session: string };

    const elsewhere = await browser.context.newPage();
    await elsewhere.goto(`${otherUrl}/`);
    await elsewhere.evaluate(() => fetch("/anything", { credentials: "include" }));
    assert.ok(received.length >= 2);
    for (const headers of received) assert.equal(headers.cookie, undefined, "no cookie reaches another port");
    const seenThere = await elsewhere.evaluate(() => ({
      cookie: document.cookie,
      local: localStorage.length,
      session: sessionStorage.length,
    }));
    assert.deepEqual(seenThere, { cookie: "", local: 0, session: 0 });
    // Replaying everything it received at the hub's live feed gets nothing.
    for (const headers of received) {
      const replay: Record<string, string> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (typeof value === "string" && !["host", "connection", "content-length"].includes(name)) {
          replay[name] = value;
        }
      }
      await assert.rejects(openAdminStream(hub.url, replay), /401/);
    }
    await elsewhere.close();

    // Signing in to a second hub on this host, in the same browser...
    const second = await world.startHub({ project: "second", args: ["--port", "0"] });
    const page2 = await browser.context.newPage();
    await signInPage(page2, second.url, second.token);
    // ...leaves the first signed in, even when its feed has to reconnect.
    relay.cut();
    await world.connect(hub, { name: "after-the-cut" });
    await page.waitForSelector('.agent[data-agent="after-the-cut"]');
    await page.waitForSelector('#link[data-link="live"]');
    assert.ok(relay.cuts >= 1);
    const stream = await openAdminStream(hub.url, sessionHeader(session));
    stream.close();
    await page2.close();
    await page.close();
  });
});

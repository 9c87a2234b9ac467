import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Message } from "../contract/schemas.ts";
import type { HubClient } from "../hub/client/hub-client.ts";
import { launchBrowser, type TestBrowser } from "./support/browser.ts";
import { type HubProcess, HubWorld, ROOT, waitFor } from "./support/hub-harness.ts";

/** Git-ignored; the README's picture is a copy of one of these (docs/dashboard.png). */
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
    assert.equal(await page.locator("#sign-in").count(), 1);
    assert.equal(await page.locator("#agents").count(), 0, "no dashboard before signing in");
    await page.fill("#secret", "not-the-token-at-all");
    const [response] = await Promise.all([
      page.waitForResponse("**/dashboard/sign-in"),
      page.click("button"),
    ]);
    assert.equal(response.status(), 401);
    await page.waitForSelector(".error");
    assert.match((await page.locator(".error").textContent()) ?? "", /wrong hub token/);
    assert.equal(await page.locator("#agents").count(), 0);
    // Nor can the page reach the feed or the scripts.
    const probes = await page.evaluate(async () => ({
      feed: (await fetch("/trpc/admin.watch")).status,
      script: (await fetch("/dashboard/app.js")).status,
      metrics: (await fetch("/metrics")).status,
    }));
    assert.deepEqual(probes, { feed: 401, script: 401, metrics: 401 });
    const cookies = await browser.context.cookies();
    assert.equal(cookies.length, 0, "a refused sign-in sets no cookie");
    await page.screenshot({ path: join(SHOTS, "dashboard-refused.png") });
    await page.close();
  });

  it("signs in, then shows agents, a message and its reply live, without a reload", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${hub.url}/`);
    await page.fill("#secret", hub.token);
    await Promise.all([page.waitForURL(`${hub.url}/`), page.click("button")]);
    await page.waitForSelector('#link[data-link="live"]');
    const [cookie] = await browser.context.cookies();
    assert.equal(cookie?.name, "pi_coms_session");
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, "Strict");
    assert.ok(!page.url().includes(hub.token), "the token is in no URL");
    // Marks this document: it would be gone after any reload.
    await page.evaluate(() => {
      (window as unknown as { sameDocument: boolean }).sameDocument = true;
    });

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
    const row = page.locator(`tr[data-msg="${ack.msg_id}"]`);
    await row.waitFor();
    await waitFor(() => inbound.length === 1, { what: "bob's inbound message" });
    // bob's client acknowledges receipt: the same row turns delivered, and alice shows as waiting on bob.
    await page.waitForSelector(`tr[data-msg="${ack.msg_id}"][data-state="delivered"]`);
    await page.waitForSelector('#waiting li[data-from="alice"][data-to="bob"]');
    assert.match((await row.textContent()) ?? "", /alice[\s\S]*bob[\s\S]*please review PR 7/);

    // bob delegates part of it to carol in the same conversation, then answers alice.
    const sub = await bob.send({
      to: "carol",
      prompt: "run the tests for PR 7",
      conversation_id: "review-7",
    });
    await page.waitForSelector(`tr[data-msg="${sub.msg_id}"]`);
    await bob.settle(ack.msg_id, { ok: true, text: "looks good, tests pending" });
    await page.waitForSelector(`tr[data-msg="${ack.msg_id}"][data-state="replied"]`);
    const trail = (await row.locator("td").nth(3).textContent()) ?? "";
    assert.match(trail, /queued → delivered \d+ ms → replied/);
    assert.match((await row.textContent()) ?? "", /looks good/);
    // The summaries redraw about once a second: wait for them rather than read them at once.
    await page.waitForFunction(
      () => document.querySelectorAll('.conversation[data-key="conversation review-7"] li').length === 2,
    );
    // carol has not answered: bob is waiting on carol now, alice on nobody.
    await page.waitForSelector('#waiting li[data-from="bob"][data-to="carol"]');
    await page.waitForSelector('#waiting li[data-from="alice"]', { state: "detached" });

    // An error outcome shows with its code.
    carol.onInbound((message) => {
      void carol.settle(message.msg_id, { ok: false, code: "BAD_INPUT", message: "no such PR" });
    });
    await page.waitForSelector(`tr[data-msg="${sub.msg_id}"][data-state="error"]`);
    assert.match((await page.locator(`tr[data-msg="${sub.msg_id}"]`).textContent()) ?? "", /error BAD_INPUT/);

    // Leaving removes the card.
    const dave: HubClient = await world.connect(hub, { name: "dave" });
    await page.waitForSelector('.agent[data-agent="dave"]');
    await dave.close();
    await page.waitForSelector('.agent[data-agent="dave"]', { state: "detached" });

    assert.equal(
      await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument),
      true,
    );
    await page.waitForSelector('.conversation li[data-state="error"]');
    // One more left unanswered, so the picture shows a wait.
    await alice.send({ to: "bob", prompt: "and the docs for PR 7?", conversation_id: "review-7" });
    await page.waitForSelector('#waiting li[data-from="alice"][data-to="bob"]');
    await page.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: true });
    await page.close();
  });

  it("signs out: the session is gone and the feed refused", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${hub.url}/`);
    await page.waitForSelector("#agents");
    await Promise.all([
      page.waitForURL(`${hub.url}/`),
      page.click('form[action="/dashboard/sign-out"] button'),
    ]);
    await page.waitForSelector("#sign-in");
    assert.equal(await page.evaluate(async () => (await fetch("/trpc/admin.watch")).status), 401);
    await page.close();
  });
});

/**
 * The dashboard as an operator meets it: 210 agents with long names on a real
 * hub, one offline, a hot spot, a chain, and a wait cycle made on purpose;
 * read in Chromium at phone, laptop and wide-screen widths. Nothing may cut
 * off a name, a state or a time; agents needing attention come first; the
 * wait cycle shows as a cycle in the graph. Screenshots land in
 * .tmp/screenshots (the docs' pictures are copies).
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { launchBrowser, type TestBrowser } from "./support/browser.ts";
import { cutOff, signInPage } from "./support/dashboard-page.ts";
import { echo, type HubProcess, HubWorld, ROOT } from "./support/hub-harness.ts";
import { rawClient } from "./support/hub-raw-client.ts";

const SHOTS = join(ROOT, ".tmp", "screenshots");
const WIDTHS = [390, 1400, 2560];
/** What must always show in full. */
const MUST_SHOW = [
  ".agent .name",
  ".agent .status",
  ".msg .time",
  ".msg .who",
  ".msg .state",
  ".msg .step",
  "#waiting .who",
  ".conversation .who",
  ".conversation .state",
  ".conversation .step",
];
const TEAMS = ["payments", "search-indexing", "frontend", "infra", "docs", "billing", "auth", "mobile"];
const ROLES = ["refactoring-specialist", "reviewer", "test-runner", "planner", "migration-writer", "coder"];

/** Long, real-looking names up to the 64-character limit. */
function nameOf(i: number): string {
  const team = TEAMS[i % TEAMS.length] as string;
  const role = ROLES[(i * 5) % ROLES.length] as string;
  const long = i % 3 === 0 ? `-for-the-${team}-service-rewrite-project` : "";
  return `${team}-${role}${long}-${String(i).padStart(3, "0")}`.slice(0, 64);
}

const MODELS = ["claude-sonnet-4-5", "gpt-5-codex", "gemini-2.5-pro", "qwen3-coder"];
const COLORS = ["#e3b341", "#58a6ff", "#f778ba", "#7ee787", "#d2a8ff", "#ffa657"];

/** Register an agent with a purpose, model and colour, as a real one would show; a client that calls as it. */
async function register(url: string, token: string, name: string, i: number) {
  const result = await rawClient(url, token).agents.register.mutate({
    name,
    purpose: `${ROLES[i % ROLES.length]?.replaceAll("-", " ")} for the ${TEAMS[i % TEAMS.length]} team`,
    model: MODELS[i % MODELS.length] as string,
    color: COLORS[i % COLORS.length] as string,
  });
  return {
    card: result.card,
    client: rawClient(url, token, { id: result.card.id, agentToken: result.agent_token }),
  };
}

type Raw = Awaited<ReturnType<typeof register>>;

describe("the dashboard at 390, 1400 and 2560 px with 210 agents (Chromium, real hub)", () => {
  let world: HubWorld;
  let hub: HubProcess;
  let browser: TestBrowser;
  let page: Page;
  const agents = new Map<string, Raw>();
  let beat: NodeJS.Timeout | undefined;
  const cycle = ["search-indexing-coder-with-a-very-long-name-that-keeps-going", "frontend-reviewer-b"];

  before(async () => {
    // Quick presence, so one agent can go offline within the test; the others heartbeat each second
    // (6 times within the stale time: an agent without an inbox stream loses its messages when stale).
    world = new HubWorld({
      PI_COMS_NET_STALE_AFTER_MS: "6000",
      PI_COMS_NET_OFFLINE_AFTER_MS: "10000",
      PI_COMS_NET_HEARTBEAT_MS: "1000",
    });
    hub = await world.startHub({ args: ["--port", "0"] });
    browser = await launchBrowser();
    mkdirSync(SHOTS, { recursive: true });
    const gone = await register(
      hub.url,
      hub.token,
      "zz-agent-that-went-away-while-holding-the-release-branch",
      0,
    );
    agents.set(gone.card.name, gone);
    for (let i = 0; i < 206; i++) {
      const agent = await register(hub.url, hub.token, nameOf(i), i);
      agents.set(agent.card.name, agent);
    }
    for (const [i, name] of cycle.entries()) agents.set(name, await register(hub.url, hub.token, name, i));
    beat = setInterval(() => {
      for (const [name, agent] of agents) {
        if (name.startsWith("zz-")) continue;
        // The model and context again each time, as the plugin sends them.
        const patch = { model: agent.card.model, context_used_pct: (name.length * 7) % 90 };
        void agent.client.agents.heartbeat.mutate(patch).catch(() => {});
      }
    }, 1000);
  });
  after(async () => {
    clearInterval(beat);
    await browser?.close();
    await world?.dispose();
  });

  const send = (from: string, to: string, prompt: string, extra: Record<string, string> = {}) =>
    (agents.get(from) as Raw).client.messages.send.mutate({ to, prompt, ...extra });

  it("reads at every width: nothing cut, attention first, the wait cycle marked", async () => {
    // Two real clients that answer, for replied rows with previews.
    const answering = await world.connect(hub, {
      name: "payments-reviewer-who-answers-everything-quickly-and-politely",
      purpose: "reviews payment changes",
      model: "claude-sonnet-4-5",
    });
    echo(answering);
    const asking = await world.connect(hub, {
      name: "billing-planner-asking",
      purpose: "plans billing work",
    });
    for (let i = 0; i < 6; i++) {
      const ack = await asking.send({
        to: answering.self.name,
        prompt: `please look at the retry logic in invoice batch ${i}: it double-charges when the provider times out twice in a row`,
        conversation_id: "invoice-retries",
      });
      await asking.await(ack.msg_id, { timeoutMs: 10_000 });
    }
    // The wait cycle: each asks the other, neither answers.
    const [a, b] = cycle as [string, string];
    await send(a, b, "which schema version do you index against?");
    await send(b, a, "I need your index mapping before I can answer");
    // A hot spot: six agents wait on one.
    const hot = nameOf(1);
    for (let i = 10; i < 16; i++) await send(nameOf(i), hot, `review request ${i}`);
    // A chain: three hops, one chain id.
    await send(nameOf(20), nameOf(21), "start the release", { chain_id: "release-42" });
    await send(nameOf(21), nameOf(22), "build the release notes", { chain_id: "release-42" });
    await send(nameOf(22), nameOf(23), "check the changelog links", { chain_id: "release-42" });
    // A longer wait cycle: 30 → 31 → 32 → 30.
    await send(nameOf(30), nameOf(31), "can you take the schema migration?");
    await send(nameOf(31), nameOf(32), "which index does the migration touch?");
    await send(nameOf(32), nameOf(30), "who owns the schema now?");

    page = await browser.context.newPage();
    await page.setViewportSize({ width: 1400, height: 900 });
    await signInPage(page, hub.url, hub.token);
    await page.waitForFunction(() => document.querySelectorAll(".agent").length === 211);
    // The one that stopped heartbeating goes offline and comes first; then, once their answers are owed
    // for over 10 s, the six agents owing one, the longest owed first; then the 200 others by name.
    await page.waitForSelector('.agent[data-agent^="zz-agent"][data-status="offline"]', { timeout: 20_000 });
    // b was asked first, then a; then the hot spot; then the chain, hop by hop; then the loop of three.
    const owing = [b, a, hot, nameOf(21), nameOf(22), nameOf(23), nameOf(31), nameOf(32), nameOf(30)];
    await page.waitForFunction(
      (names) => {
        const first = [...document.querySelectorAll<HTMLElement>(".agent")].map((c) => c.dataset.agent);
        return first[0]?.startsWith("zz-") && names.every((n) => first.slice(1, 10).includes(n));
      },
      owing,
      { timeout: 30_000 },
    );
    const order = await page.$$eval(".agent", (cards) =>
      cards
        .slice(0, 11)
        .map((c) => ({ name: (c as HTMLElement).dataset.agent, owes: (c as HTMLElement).dataset.owes })),
    );
    assert.deepEqual(
      order.slice(1, 10).map((c) => c.name),
      owing,
      "longest owed first",
    );
    assert.equal(order.find((c) => c.name === hot)?.owes, "6");
    assert.equal(order[10]?.owes, "0");

    // The wait cycle is drawn as one: both arrows marked, the others not.
    await page.waitForSelector(`#graph .edge.cycle[data-from="${a}"][data-to="${b}"]`);
    await page.waitForSelector(`#graph .edge.cycle[data-from="${b}"][data-to="${a}"]`);
    // And the loop of three: its three arrows, nothing else.
    for (const [from, to] of [
      [30, 31],
      [31, 32],
      [32, 30],
    ] as const) {
      await page.waitForSelector(`#graph .edge.cycle[data-from="${nameOf(from)}"][data-to="${nameOf(to)}"]`);
    }
    assert.equal(await page.locator("#graph .edge.cycle").count(), 5);
    assert.equal(await page.locator(`#graph .edge[data-to="${hot}"][data-cycle="false"]`).count(), 6);
    assert.equal(await page.locator(`#waiting li.cycle[data-from="${a}"]`).count(), 1);

    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width < 500 ? 844 : width < 2000 ? 900 : 1440 });
      // The graph redraws for its new width; wait for it, then measure.
      await page.waitForFunction(
        () =>
          Math.abs(
            Number(document.getElementById("graph")?.getAttribute("width")) -
              (document.getElementById("graph-box")?.clientWidth ?? 0),
          ) <= 1,
      );
      const cuts = await cutOff(page, MUST_SHOW);
      assert.deepEqual(cuts.slice(0, 5), [], `at ${width} px: ${cuts.length} cut off`);
      const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(pageWidth <= width, `at ${width} px the page is ${pageWidth} px wide`);
      await page.screenshot({ path: join(SHOTS, `dashboard-${width}.png`) });
    }
  });
});

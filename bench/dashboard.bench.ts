/**
 * Dashboard load: 1,000 agents on a hub and 100 messages a second between
 * them (each delivered, then answered 0.05-2 s later, so some are always
 * waiting), watched by the dashboard in headless Chromium. Measures, in the
 * page: main-thread long tasks (>50 ms), the longest gap between animation
 * frames, time spent applying events and rendering, and how far the page
 * lags behind the hub (the newest row shown vs the newest sent).
 *
 *   node bench/dashboard.bench.ts      (or: npm run bench -- dashboard)
 *   BENCH_AGENTS=1000 BENCH_RATE=100 BENCH_SECONDS=20 node bench/dashboard.bench.ts
 *
 * BENCH_TRACE=1 also prints where the renderer's main thread spent its time
 * (Chromium trace events by name: Paint, Layout, FunctionCall, ...).
 *
 * Needs /usr/bin/chromium (or PI_COMS_TEST_CHROMIUM). The screenshot goes
 * to .tmp/screenshots/dashboard-load.png.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../test/support/browser.ts";
import { rawAgent } from "../test/support/hub-raw-client.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/**
 * One population of agents. `npm run bench` hands every bench the same
 * environment, and the others read BENCH_AGENTS as a list of counts: here
 * the largest of a list is used (a list read as one number would be NaN, and
 * the bench would wait for agents that never come).
 */
const AGENTS = agentCount(process.env.BENCH_AGENTS ?? "1000");
function agentCount(text: string): number {
  const counts = text.split(",").map(Number);
  const most = Math.max(...counts);
  if (counts.some((n) => !Number.isInteger(n) || n < 1) || most < 2) {
    throw new Error(`BENCH_AGENTS=${text}: the dashboard bench needs a whole number of agents (2 or more)`);
  }
  if (counts.length > 1)
    console.log(`dashboard bench: one population, ${most} agents (the largest of BENCH_AGENTS)`);
  return most;
}
const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);

const dir = mkdtempSync(join(tmpdir(), "pi-coms-dash-bench-"));
let hubProcess: ChildProcess | undefined;
try {
  await main();
} finally {
  hubProcess?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const env = {
    ...process.env,
    HOME: dir,
    PI_COMS_NET_DIR: join(dir, "net"),
    PI_COMS_DIR: join(dir, "coms"),
  };
  const hub = spawn(
    process.execPath,
    [
      join(ROOT, "hub/cli.ts"),
      "--project",
      "bench",
      "--store",
      "memory",
      "--max-sends-per-sec",
      "0",
      "--max-pending-registrations",
      "0",
    ],
    { env, stdio: ["ignore", "pipe", "inherit"] },
  );
  hubProcess = hub;
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    hub.stdout?.on("data", (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
    hub.once("exit", (code) => reject(new Error(`hub exited ${code}: ${out}`)));
  });
  const token = (
    JSON.parse(readFileSync(join(dir, "net/projects/bench/server.secret.json"), "utf8")) as { token: string }
  ).token;

  const browser = await launchBrowser();
  const page = await browser.context.newPage();
  await page.goto(`${url}/`);
  await page.fill("#secret", token);
  await page.click("#sign-in-button");
  await page.waitForSelector('#link[data-link="live"]');

  const started = performance.now();
  const agents: Awaited<ReturnType<typeof rawAgent>>[] = [];
  for (let i = 0; i < AGENTS; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, AGENTS - i) }, (_, k) => rawAgent(url, token, `agent-${i + k}`)),
    );
    agents.push(...batch);
  }
  await page.waitForFunction((n) => document.querySelectorAll(".agent").length === n, AGENTS, {
    timeout: 60_000,
  });
  console.log(
    `${AGENTS} agents registered and shown in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  // Page-side probes: long tasks and the longest gap between frames, from now on.
  await page.evaluate(() => {
    const probe = { longTasks: 0, longTaskMs: 0, maxFrameGapMs: 0, frames: 0 };
    Object.assign(window, { benchProbe: probe });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        probe.longTasks += 1;
        probe.longTaskMs += entry.duration;
      }
    }).observe({ type: "longtask" });
    let last = performance.now();
    const tick = (now: number) => {
      probe.frames += 1;
      probe.maxFrameGapMs = Math.max(probe.maxFrameGapMs, now - last);
      last = now;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    const stats = (window as unknown as { piComsDashboard: { stats: Record<string, number> } })
      .piComsDashboard.stats;
    for (const key of Object.keys(stats)) stats[key] = 0;
  });

  // Chromium's own accounting of the renderer's main thread (script, style, layout), from now on.
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () =>
    Object.fromEntries(
      (
        (await cdp.send("Performance.getMetrics")) as { metrics: { name: string; value: number }[] }
      ).metrics.map((m) => [m.name, m.value]),
    ) as Record<string, number>;
  const cpuBefore = await metrics();
  const traceEvents: Array<{
    name: string;
    ph: string;
    dur?: number;
    tid: number;
    pid: number;
    cat: string;
  }> = [];
  if (process.env.BENCH_TRACE) {
    cdp.on("Tracing.dataCollected", (e) => {
      traceEvents.push(...(e.value as unknown as typeof traceEvents));
    });
    await cdp.send("Tracing.start", {
      categories: "devtools.timeline,disabled-by-default-devtools.timeline",
      transferMode: "ReportEvents",
    });
  }

  let sent = 0;
  let failed = 0;
  let lastId = "";
  const inFlight = new Set<Promise<void>>();
  const total = RATE * SECONDS;
  const t0 = performance.now();
  for (let n = 0; n < total; n++) {
    const due = t0 + (n * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const from = agents[Math.floor(Math.random() * agents.length)];
    let to = agents[Math.floor(Math.random() * agents.length)];
    if (to === from) to = agents[(agents.indexOf(to as (typeof agents)[number]) + 1) % agents.length];
    if (!from || !to) continue;
    const job = (async () => {
      const ack = await from.client.messages.send.mutate({
        to: to.card.name,
        prompt: `task ${n}: please look at file ${n % 97}.ts`,
        conversation_id: `conv-${n % 50}`,
      });
      sent += 1;
      lastId = ack.msg_id;
      await to.client.messages.ack.mutate({ msg_ids: [ack.msg_id] });
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 1950));
      await to.client.messages.settle.mutate({ msg_id: ack.msg_id, result: { ok: true, text: `done ${n}` } });
    })().catch(() => {
      failed += 1;
    });
    inFlight.add(job);
    void job.finally(() => inFlight.delete(job));
  }
  const sendSeconds = (performance.now() - t0) / 1000;
  // How long until the newest message is on screen.
  const lagStart = performance.now();
  await page.waitForSelector(`.msg[data-msg="${lastId}"]`, { timeout: 30_000 });
  const lagMs = performance.now() - lagStart;
  await Promise.all(inFlight);
  const probe = (await page.evaluate(() => ({
    ...(window as unknown as { benchProbe: Record<string, number> }).benchProbe,
    ...(window as unknown as { piComsDashboard: { stats: Record<string, number> } }).piComsDashboard.stats,
    rows: document.querySelectorAll("#messages .msg").length,
  }))) as Record<string, number>;
  const cpuAfter = await metrics();
  if (process.env.BENCH_TRACE) {
    const done = new Promise((resolve) => cdp.once("Tracing.tracingComplete", resolve));
    await cdp.send("Tracing.end");
    await done;
    const main = traceEvents.find(
      (e) =>
        e.ph === "M" &&
        e.name === "thread_name" &&
        (e as unknown as { args: { name: string } }).args.name === "CrRendererMain",
    );
    const byName = new Map<string, number>();
    for (const e of traceEvents) {
      if (e.ph !== "X" || e.dur === undefined) continue;
      if (main && (e.tid !== main.tid || e.pid !== main.pid)) continue;
      byName.set(e.name, (byName.get(e.name) ?? 0) + e.dur / 1000);
    }
    const top = [...byName].sort((a, b) => b[1] - a[1]).slice(0, 12);
    console.log(
      `renderer main thread by trace event (ms): ${top.map(([n, d]) => `${n} ${d.toFixed(0)}`).join(", ")}`,
    );
  }
  const cpu = (name: string) => ((cpuAfter[name] ?? 0) - (cpuBefore[name] ?? 0)) * 1000;
  const filterStart = performance.now();
  // A filter that matches a few cards at any population (11 of 1,000 for "agent-99").
  const filter = AGENTS >= 100 ? "agent-99" : `agent-${AGENTS - 1}`;
  const matching = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`).filter((n) =>
    n.includes(filter),
  ).length;
  await page.fill("#agent-filter", filter);
  await page.waitForFunction((n) => document.querySelectorAll(".agent:not([hidden])").length === n, matching);
  const filterMs = performance.now() - filterStart;
  mkdirSync(join(ROOT, ".tmp", "screenshots"), { recursive: true });
  await page.fill("#agent-filter", "");
  await page.screenshot({ path: join(ROOT, ".tmp", "screenshots", "dashboard-load.png") });
  await browser.close();

  const r = (x: number | undefined, d = 1) => (x ?? 0).toFixed(d);
  console.log(
    `sent ${sent} messages (${failed} failed) in ${sendSeconds.toFixed(1)} s = ${(sent / sendSeconds).toFixed(0)} msg/s, ` +
      `each delivered then answered 0.05-2 s later`,
  );
  console.log(
    `page over the run: ${probe.events} SSE events, ${probe.renders} renders, ` +
      `apply ${r(probe.applyMs)} ms + render ${r(probe.renderMs)} ms of main thread in total, longest render ${r(probe.maxRenderMs)} ms`,
  );
  console.log(
    `renderer main thread busy ${r(cpu("TaskDuration"), 0)} ms of ${r(sendSeconds * 1000, 0)} ms ` +
      `(script ${r(cpu("ScriptDuration"), 0)}, style ${r(cpu("RecalcStyleDuration"), 0)}, layout ${r(cpu("LayoutDuration"), 0)})`,
  );
  console.log(
    `responsiveness: ${probe.longTasks} long tasks (>50 ms) totalling ${r(probe.longTaskMs, 0)} ms, ` +
      `${probe.frames} frames, longest frame gap ${r(probe.maxFrameGapMs, 0)} ms; ` +
      `newest row on screen ${r(lagMs, 0)} ms after the last send returned; table rows ${probe.rows}; ` +
      `filtering ${AGENTS} cards took ${r(filterMs, 0)} ms (incl. playwright round trips)`,
  );
}

// The dashboard's entry: one EventSource on the admin.watch subscription
// (tRPC over SSE, same origin, authorised by the session cookie), events
// applied to HubState as they come, the page redrawn at most once a frame.

import { Renderer } from "./render.js";
import { HubState } from "./state.js";

const state = new HubState();
const renderer = new Renderer(state);
const link = /** @type {HTMLElement} */ (document.getElementById("link"));
let frame = 0;
/** What the page costs, for anyone curious (and the load benchmark): read it from the console. */
const stats = { events: 0, applyMs: 0, renders: 0, renderMs: 0, maxRenderMs: 0 };
Object.assign(window, { piComsDashboard: { stats } });

function setLink(mode, text) {
  link.dataset.link = mode;
  link.textContent = text;
}

function scheduleRender() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const started = performance.now();
    renderer.render();
    const took = performance.now() - started;
    stats.renders += 1;
    stats.renderMs += took;
    stats.maxRenderMs = Math.max(stats.maxRenderMs, took);
  });
}

const source = new EventSource("/trpc/admin.watch");
source.onopen = () => setLink("live", "live");
source.onmessage = (message) => {
  const started = performance.now();
  const payload = JSON.parse(message.data);
  // tRPC wraps each event in the transformer's envelope ({ json: ... }).
  state.apply(payload && typeof payload === "object" && "json" in payload ? payload.json : payload);
  stats.events += 1;
  stats.applyMs += performance.now() - started;
  scheduleRender();
};
source.addEventListener("serialized-error", (message) => {
  const error = JSON.parse(/** @type {MessageEvent} */ (message).data);
  setLink("error", `error: ${error?.json?.message ?? "the hub refused the feed"}`);
});
source.onerror = async () => {
  if (source.readyState !== EventSource.CLOSED) {
    setLink("reconnecting", "reconnecting…");
    return;
  }
  // The browser gave up (the hub answered with an error): a lapsed session means signing in again.
  const probe = await fetch("/dashboard/app.js", { method: "HEAD", cache: "no-store" }).catch(() => null);
  if (probe && probe.status === 401) location.assign("/");
  else setLink("down", "disconnected: reload to retry");
};
// Waiting times keep growing while nothing arrives.
setInterval(scheduleRender, 1000);

// The dashboard's entry. Signing in posts the token or a one-time code and
// gets a session id back, which lives only in this page's memory (no cookie,
// no storage: no other server on the host, and no later page on this port,
// can pick it up; reloading the page means signing in again). The live data
// is admin.watch read by Feed; events go to HubState, and the page is
// redrawn at most once a frame.

import { Feed, SESSION_HEADER } from "./feed.js";
import { Renderer } from "./render.js";
import { HubState } from "./state.js";

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

let state = new HubState();
const renderer = new Renderer(state);
/** @type {string | undefined} */
let session;
/** @type {Feed | undefined} */
let feed;
let frame = 0;
/** What the page costs, for anyone curious (and the load benchmark): read it from the console. */
const stats = { events: 0, applyMs: 0, renders: 0, renderMs: 0, maxRenderMs: 0, opens: 0, pings: 0 };
Object.assign(window, { piComsDashboard: { stats } });

function setLink(mode, text) {
  const link = $("link");
  link.dataset.link = mode;
  link.textContent = text;
}

function scheduleRender() {
  if (frame || !session) return;
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

function show(view) {
  document.body.dataset.view = view;
  $("sign-in-view").hidden = view !== "sign-in";
  $("dashboard").hidden = view !== "dashboard";
}

function signedOut(message) {
  feed?.stop();
  feed = undefined;
  session = undefined;
  state = new HubState();
  renderer.state = state;
  renderer.clear();
  const error = $("sign-in-error");
  error.textContent = message;
  error.hidden = !message;
  show("sign-in");
  $("secret").focus();
}

function signedIn(id) {
  session = id;
  show("dashboard");
  setLink("connecting", "connecting…");
  feed = new Feed(id, {
    event(event) {
      const started = performance.now();
      state.apply(event);
      stats.events += 1;
      stats.applyMs += performance.now() - started;
      scheduleRender();
    },
    seen(name) {
      if (name === "open") stats.opens += 1;
      else if (name === "ping") stats.pings += 1;
    },
    link: setLink,
    ended: signedOut,
  });
  feed.start();
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("secret"));
  const button = /** @type {HTMLButtonElement} */ ($("sign-in-button"));
  const error = $("sign-in-error");
  button.disabled = true;
  try {
    const response = await fetch("/dashboard/sign-in", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ secret: input.value }),
      cache: "no-store",
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok && typeof answer.session === "string") {
      input.value = "";
      error.hidden = true;
      signedIn(answer.session);
    } else {
      error.textContent = answer.error ?? `the hub answered ${response.status}`;
      error.hidden = false;
    }
  } catch {
    error.textContent = "the hub did not answer: is it running?";
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

$("sign-out").addEventListener("click", async () => {
  const id = session;
  signedOut("");
  if (id) {
    await fetch("/dashboard/sign-out", { method: "POST", headers: { [SESSION_HEADER]: id } }).catch(() => {});
  }
});

show("sign-in");
// Waiting times keep growing while nothing arrives.
setInterval(scheduleRender, 1000);

// Drawing HubState into the page. Incremental: a card or a message row is
// created once and then only its changed text is rewritten; the summaries
// (the wait graph, waiting, conversations, the agents' order) are redrawn at
// most once a second. Text goes in through textContent only, never as HTML.
// Nothing is cut with an ellipsis: names, states and times wrap instead.

import { bytes, clock, ms, stateText, trailSteps } from "./format.js";
import { drawGraph } from "./graph.js";
import { MAX_THREAD } from "./state.js";

/** Rows in the table: the newest; more cost layout and paint on every change and nobody reads them live. */
export const MAX_TABLE_ROWS = 100;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** "a → b → c" as steps that wrap between, never inside. */
function steps(node, parts) {
  const text = parts.join(" → ");
  if (node.dataset.text === text) return;
  node.dataset.text = text;
  const children = [];
  parts.forEach((part, i) => {
    if (i > 0) children.push(el("span", "arrow", " → "));
    children.push(el("span", "step", part));
  });
  node.replaceChildren(...children);
}

export class Renderer {
  constructor(state) {
    this.state = state;
    /** @type {Map<string, HTMLElement>} */
    this.cards = new Map();
    /** @type {Map<string, HTMLElement>} */
    this.rowNodes = new Map();
    this.filter = "";
    this.summariesAt = 0;
    this.graphWidth = 0;
    $("row-cap").textContent = String(MAX_TABLE_ROWS);
    /** created_at of the oldest row shown once the table is full: older rows stay out. */
    this.floor = Number.NEGATIVE_INFINITY;
    $("agent-filter").addEventListener("input", (event) => {
      this.filter = /** @type {HTMLInputElement} */ (event.target).value.trim().toLowerCase();
      for (const [id, card] of this.cards) this.applyFilter(card, this.state.agents.get(id));
    });
    // The graph is drawn in pixels of its box: redraw when the box changes width. The width comes
    // from here, never read during a render (that would force a layout in the middle of one).
    new ResizeObserver(([entry]) => {
      const width = Math.floor(entry?.contentRect.width ?? 0);
      if (width === this.graphWidth) return;
      this.graphWidth = width;
      this.drawGraph();
    }).observe($("graph-box"));
  }

  render(now = Date.now()) {
    const changes = this.state.takeChanges();
    if (changes.reset) this.redrawAll();
    else {
      for (const id of changes.removedAgents) {
        this.cards.get(id)?.remove();
        this.cards.delete(id);
      }
      for (const id of changes.agents) this.drawCard(this.state.agents.get(id));
      for (const id of changes.removedRows) {
        this.rowNodes.get(id)?.remove();
        this.rowNodes.delete(id);
      }
      const fresh = [];
      for (const id of changes.rows) {
        const row = this.state.rows.get(id);
        if (!row) continue;
        const node = this.rowNodes.get(id);
        if (node) this.fillRow(node, row);
        else fresh.push(row);
      }
      this.insertRows(fresh);
    }
    this.header(now);
    if (changes.reset || now - this.summariesAt >= 1000) {
      this.summariesAt = now;
      this.orderAgents(now);
      this.drawGraph(now);
      this.drawWaiting(now);
      this.drawConversations();
    }
  }

  /** Forget everything drawn (signed out, or signing in again). */
  clear() {
    $("agents").replaceChildren();
    $("messages").replaceChildren();
    $("graph").replaceChildren();
    this.cards.clear();
    this.rowNodes.clear();
    this.floor = Number.NEGATIVE_INFINITY;
  }

  redrawAll() {
    this.clear();
    const fragment = document.createDocumentFragment();
    for (const card of this.state.agentsByAttention(Date.now())) fragment.append(this.drawCard(card, false));
    $("agents").append(fragment);
    this.insertRows([...this.state.rows.values()]);
    const hub = this.state.hub;
    if (hub) {
      $("project").textContent = `project ${hub.project}`;
      $("content-mode").textContent = hub.content ? "previews on" : "previews off (--dashboard-content off)";
    }
  }

  header(now) {
    const counts = this.state.counts();
    setText($("stat-online"), String(counts.online));
    setText($("stat-stale"), String(counts.stale));
    setText($("stat-offline"), String(counts.offline));
    setText($("stat-pending"), String(counts.pending));
    setText($("stat-rate"), this.state.rate(now).toFixed(1));
    setText($("agent-count"), `(${this.state.agents.size})`);
    for (const name of ["stale", "offline"]) {
      const box = /** @type {HTMLElement} */ ($(`stat-${name}`).parentElement);
      box.classList.toggle("alert", counts[name] > 0);
    }
  }

  /** Agents needing attention first (offline, stale, owing answers); nodes move only when the order changed. */
  orderAgents(now = Date.now()) {
    const box = $("agents");
    let at = box.firstElementChild;
    for (const card of this.state.agentsByAttention(now)) {
      const node = this.cards.get(card.id);
      if (!node) continue;
      if (node === at) at = at.nextElementSibling;
      else box.insertBefore(node, at);
    }
  }

  /** Create or update one agent card; new cards go first (they are looked at) unless `attach` is false. */
  drawCard(card, attach = true) {
    let node = this.cards.get(card.id);
    if (!node) {
      node = el("article", "agent");
      node.dataset.id = card.id;
      const head = el("div", "agent-head");
      head.append(el("span", "dot"), el("b", "name"), el("span", "status"));
      node.append(head, el("div", "purpose"), el("div", "facts"));
      this.cards.set(card.id, node);
      if (attach) $("agents").prepend(node);
    }
    node.dataset.agent = card.name;
    node.dataset.status = card.status;
    node.dataset.owes = String(card.queue_depth ?? 0);
    if (card.color) node.style.setProperty("--agent-color", card.color);
    setText(/** @type {HTMLElement} */ (node.querySelector(".name")), card.name);
    const owes = card.queue_depth > 0 ? ` · owes ${card.queue_depth}` : "";
    setText(/** @type {HTMLElement} */ (node.querySelector(".status")), `${card.status}${owes}`);
    setText(/** @type {HTMLElement} */ (node.querySelector(".purpose")), card.purpose || "—");
    const facts = [
      card.model || "model ?",
      card.context_used_pct === null || card.context_used_pct === undefined
        ? "ctx ?"
        : `ctx ${Math.round(card.context_used_pct)}%`,
      `queue ${card.queue_depth}`,
      `hub ${card.project}`,
    ];
    const factsNode = /** @type {HTMLElement} */ (node.querySelector(".facts"));
    const text = facts.join(" · ");
    if (factsNode.dataset.text !== text) {
      factsNode.dataset.text = text;
      factsNode.replaceChildren(...facts.map((fact) => el("span", "fact", fact)));
    }
    factsNode.dataset.queue = String(card.queue_depth);
    this.applyFilter(node, card);
    return node;
  }

  applyFilter(node, card) {
    const f = this.filter;
    node.hidden =
      f !== "" && !!card && !`${card.name} ${card.purpose} ${card.model}`.toLowerCase().includes(f);
  }

  /** New rows go on top, newest first; the list keeps the newest MAX_TABLE_ROWS. */
  insertRows(candidates) {
    const rows = candidates.filter((row) => row.created_at >= this.floor);
    if (rows.length === 0) return;
    rows.sort((a, b) => a.created_at - b.created_at || (a.msg_id < b.msg_id ? -1 : 1));
    const fragment = document.createDocumentFragment();
    for (let i = rows.length - 1; i >= Math.max(0, rows.length - MAX_TABLE_ROWS); i--) {
      const row = rows[i];
      const node = el("div", "msg");
      node.dataset.msg = row.msg_id;
      node.append(
        el("span", "time"),
        el("span", "route"),
        el("span", "state"),
        el("span", "trail"),
        el("span", "size"),
        el("span", "preview"),
      );
      this.fillRow(node, row);
      this.rowNodes.set(row.msg_id, node);
      fragment.append(node);
    }
    const list = $("messages");
    list.prepend(fragment);
    while (list.children.length > MAX_TABLE_ROWS) {
      const last = /** @type {HTMLElement} */ (list.lastElementChild);
      this.rowNodes.delete(last.dataset.msg ?? "");
      last.remove();
    }
    if (list.children.length === MAX_TABLE_ROWS) {
      const last = /** @type {HTMLElement} */ (list.lastElementChild);
      this.floor = this.state.rows.get(last.dataset.msg ?? "")?.created_at ?? this.floor;
    }
  }

  fillRow(node, row) {
    const [time, route, state, trailNode, size, preview] = /** @type {HTMLElement[]} */ ([...node.children]);
    node.dataset.state = row.state;
    setText(time, clock(row.created_at));
    if (!route.firstChild) {
      route.append(
        this.agentTag(row.from_id, row.from),
        el("span", "arrow", " → "),
        this.agentTag(row.to_id, row.to),
      );
    }
    state.className = `state state-${row.state}`;
    setText(state, stateText(row));
    steps(trailNode, trailSteps(row));
    setText(
      size,
      row.reply_bytes === undefined ? bytes(row.bytes) : `${bytes(row.bytes)} / ${bytes(row.reply_bytes)}`,
    );
    const text =
      row.prompt_preview === undefined
        ? ""
        : row.reply_preview === undefined
          ? row.prompt_preview
          : `${row.prompt_preview} ⇒ ${row.reply_preview}`;
    setText(preview, text);
    preview.title = text;
  }

  agentTag(id, name) {
    const tag = el("span", "who", name);
    const card = this.state.agents.get(id);
    if (card?.color) tag.style.setProperty("--agent-color", card.color);
    return tag;
  }

  drawGraph(now = Date.now()) {
    if (this.graphWidth > 0) drawGraph($("graph"), this.state, this.graphWidth, now);
  }

  drawWaiting(now) {
    const list = $("waiting");
    const pairs = this.state.waiting();
    const items = pairs.map((pair) => {
      const li = el("li");
      li.dataset.from = pair.from;
      li.dataset.to = pair.to;
      const recipient = this.state.agents.get(pair.to_id);
      const stuck = recipient && recipient.status !== "online";
      li.append(
        el("b", "who", pair.from),
        el("span", "arrow", " waits on "),
        el("b", "who", pair.to),
        el(
          "span",
          "muted",
          ` ${pair.count} msg · ${ms(now - pair.since)}${stuck ? ` · ${recipient.status}` : ""}`,
        ),
      );
      if (pair.cycle) li.append(el("span", "badge cycle", "wait cycle"));
      li.className = [stuck ? "stuck" : "", pair.cycle ? "cycle" : ""].join(" ").trim();
      return li;
    });
    if (items.length === 0) items.push(el("li", "muted", "nobody is waiting"));
    list.replaceChildren(...items);
  }

  drawConversations() {
    const box = $("conversations");
    const groups = this.state.conversations();
    const nodes = groups.map((group) => {
      const div = el("div", "conversation");
      div.dataset.key = group.key;
      div.append(el("div", "conversation-key muted", group.key));
      const ol = el("ol");
      for (const row of group.rows.slice(-MAX_THREAD)) {
        const li = el("li");
        li.dataset.state = row.state;
        const route = el("span", "route");
        route.append(el("span", "who", row.from), el("span", "arrow", " → "), el("span", "who", row.to));
        const trailNode = el("span", "trail muted");
        steps(trailNode, trailSteps(row));
        li.append(route, el("span", `state state-${row.state}`, stateText(row)), trailNode);
        ol.append(li);
      }
      div.append(ol);
      return div;
    });
    if (nodes.length === 0) nodes.push(el("p", "muted", "no chained or conversation messages yet"));
    box.replaceChildren(...nodes);
  }
}

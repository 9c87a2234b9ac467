// Drawing HubState into the page. Incremental: a card or a row is created
// once and then only its changed text is rewritten; the two summaries
// (waiting, conversations) are small and redrawn at most once a second.
// Text goes in through textContent only, never as HTML.

import { isSettled, MAX_THREAD } from "./state.js";

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

export function ms(value) {
  if (value === undefined || value === null) return "";
  if (value < 1000) return `${Math.max(0, Math.round(value))} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  return `${Math.floor(value / 60_000)} min ${Math.round((value % 60_000) / 1000)} s`;
}

function bytes(n) {
  if (n === undefined) return "";
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

function clock(at) {
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

export class Renderer {
  constructor(state) {
    this.state = state;
    /** @type {Map<string, HTMLElement>} */
    this.cards = new Map();
    /** @type {Map<string, HTMLElement>} */
    this.trs = new Map();
    this.filter = "";
    this.summariesAt = 0;
    $("row-cap").textContent = String(MAX_TABLE_ROWS);
    /** created_at of the oldest row shown once the table is full: older rows stay out. */
    this.floor = Number.NEGATIVE_INFINITY;
    $("agent-filter").addEventListener("input", (event) => {
      this.filter = /** @type {HTMLInputElement} */ (event.target).value.trim().toLowerCase();
      for (const [id, card] of this.cards) this.applyFilter(card, this.state.agents.get(id));
    });
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
        this.trs.get(id)?.remove();
        this.trs.delete(id);
      }
      const fresh = [];
      for (const id of changes.rows) {
        const row = this.state.rows.get(id);
        if (!row) continue;
        if (this.trs.has(id)) this.fillRow(/** @type {HTMLElement} */ (this.trs.get(id)), row);
        else fresh.push(row);
      }
      this.insertRows(fresh);
    }
    this.header(now);
    if (changes.reset || now - this.summariesAt >= 1000) {
      this.summariesAt = now;
      this.drawWaiting(now);
      this.drawConversations();
    }
  }

  redrawAll() {
    const agents = $("agents");
    agents.replaceChildren();
    this.cards.clear();
    const cards = [...this.state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    const fragment = document.createDocumentFragment();
    for (const card of cards) fragment.append(this.drawCard(card, false));
    agents.append(fragment);
    $("messages").replaceChildren();
    this.trs.clear();
    this.floor = Number.NEGATIVE_INFINITY;
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
  }

  /** Create or update one agent card; new cards go at the end unless `attach` is false. */
  drawCard(card, attach = true) {
    let node = this.cards.get(card.id);
    if (!node) {
      node = el("article", "agent");
      node.dataset.id = card.id;
      const head = el("div", "agent-head");
      head.append(el("span", "dot"), el("b", "name"), el("span", "status"));
      node.append(head, el("div", "purpose"), el("div", "facts"));
      this.cards.set(card.id, node);
      if (attach) $("agents").append(node);
    }
    node.dataset.agent = card.name;
    node.dataset.status = card.status;
    if (card.color) node.style.setProperty("--agent-color", card.color);
    setText(/** @type {HTMLElement} */ (node.querySelector(".name")), card.name);
    setText(/** @type {HTMLElement} */ (node.querySelector(".status")), card.status);
    setText(/** @type {HTMLElement} */ (node.querySelector(".purpose")), card.purpose || "—");
    const facts = [
      card.model || "model ?",
      card.context_used_pct === null ? "ctx ?" : `ctx ${Math.round(card.context_used_pct)}%`,
      `queue ${card.queue_depth}`,
      `hub ${card.project}`,
    ];
    const factsNode = /** @type {HTMLElement} */ (node.querySelector(".facts"));
    setText(factsNode, facts.join(" · "));
    factsNode.dataset.queue = String(card.queue_depth);
    this.applyFilter(node, card);
    return node;
  }

  applyFilter(node, card) {
    const f = this.filter;
    node.hidden =
      f !== "" && !!card && !`${card.name} ${card.purpose} ${card.model}`.toLowerCase().includes(f);
  }

  /** New rows go on top, newest first; the table keeps the newest MAX_TABLE_ROWS. */
  insertRows(candidates) {
    const rows = candidates.filter((row) => row.created_at >= this.floor);
    if (rows.length === 0) return;
    rows.sort((a, b) => a.created_at - b.created_at || (a.msg_id < b.msg_id ? -1 : 1));
    const fragment = document.createDocumentFragment();
    for (let i = rows.length - 1; i >= Math.max(0, rows.length - MAX_TABLE_ROWS); i--) {
      const row = rows[i];
      const tr = el("tr");
      tr.dataset.msg = row.msg_id;
      for (let c = 0; c < 6; c++) tr.append(el("td"));
      this.fillRow(tr, row);
      this.trs.set(row.msg_id, tr);
      fragment.append(tr);
    }
    const tbody = $("messages");
    tbody.prepend(fragment);
    while (tbody.children.length > MAX_TABLE_ROWS) {
      const last = /** @type {HTMLElement} */ (tbody.lastElementChild);
      this.trs.delete(last.dataset.msg ?? "");
      last.remove();
    }
    if (tbody.children.length === MAX_TABLE_ROWS) {
      const last = /** @type {HTMLElement} */ (tbody.lastElementChild);
      this.floor = this.state.rows.get(last.dataset.msg ?? "")?.created_at ?? this.floor;
    }
  }

  fillRow(tr, row) {
    const cells = tr.children;
    tr.dataset.state = row.state;
    setText(/** @type {HTMLElement} */ (cells[0]), clock(row.created_at));
    const who = /** @type {HTMLElement} */ (cells[1]);
    if (!who.firstChild) {
      who.append(
        this.agentTag(row.from_id, row.from),
        el("span", "arrow", " → "),
        this.agentTag(row.to_id, row.to),
      );
    }
    const stateCell = /** @type {HTMLElement} */ (cells[2]);
    if (!stateCell.firstChild) stateCell.append(el("span"));
    const state = /** @type {HTMLElement} */ (stateCell.firstChild);
    state.className = `state state-${row.state}`;
    setText(state, row.state === "error" ? `error ${row.code ?? ""}` : row.state);
    setText(/** @type {HTMLElement} */ (cells[3]), trail(row));
    setText(
      /** @type {HTMLElement} */ (cells[4]),
      row.reply_bytes === undefined ? bytes(row.bytes) : `${bytes(row.bytes)} / ${bytes(row.reply_bytes)}`,
    );
    const preview = /** @type {HTMLElement} */ (cells[5]);
    preview.className = "preview";
    preview.title = preview.textContent ?? "";
    if (row.prompt_preview === undefined) setText(preview, "");
    else
      setText(
        preview,
        row.reply_preview === undefined ? row.prompt_preview : `${row.prompt_preview} ⇒ ${row.reply_preview}`,
      );
  }

  agentTag(id, name) {
    const tag = el("span", "who", name);
    const card = this.state.agents.get(id);
    if (card?.color) tag.style.setProperty("--agent-color", card.color);
    return tag;
  }

  drawWaiting(now) {
    const list = $("waiting");
    const pairs = this.state.waiting();
    const items = pairs.map((pair) => {
      const li = el("li");
      li.dataset.from = pair.from;
      li.dataset.to = pair.to;
      const recipient = this.state.agents.get(pair.to_id);
      li.append(
        el("b", "", pair.from),
        el("span", "arrow", " waits on "),
        el("b", "", pair.to),
        el(
          "span",
          "muted",
          ` ${pair.count} msg · ${ms(now - pair.since)}${recipient && recipient.status !== "online" ? ` · ${recipient.status}` : ""}`,
        ),
      );
      if (recipient && recipient.status !== "online") li.className = "stuck";
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
        li.append(
          el("span", "", `${row.from} → ${row.to}`),
          el(
            "span",
            `state state-${row.state}`,
            row.state === "error" ? `error ${row.code ?? ""}` : row.state,
          ),
          el("span", "muted", trail(row)),
        );
        ol.append(li);
      }
      div.append(ol);
      return div;
    });
    if (nodes.length === 0) nodes.push(el("p", "muted", "no chained or conversation messages yet"));
    box.replaceChildren(...nodes);
  }
}

/** queued → delivered 3 ms → replied 1.2 s (times since the send). */
export function trail(row) {
  const parts = ["queued"];
  if (row.delivered_at !== undefined) parts.push(`delivered ${ms(row.delivered_at - row.created_at)}`);
  if (isSettled(row)) {
    const label = row.state === "replied" ? "replied" : `error ${row.code ?? ""}`.trim();
    parts.push(`${label} ${ms((row.settled_at ?? row.created_at) - row.created_at)}`);
  }
  return parts.join(" → ");
}

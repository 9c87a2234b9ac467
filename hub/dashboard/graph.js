// Who waits on whom, as a picture: plain SVG drawn here, no library. Agents
// that wait or are waited on sit on a circle (ordered so that those that
// wait on each other sit together); each unanswered sender → recipient pair
// is an arrow with the age of its oldest message; arrows on a wait cycle are
// red and carry class "cycle"; arrows of one chain or conversation share a
// colour; a node grows with the messages waiting on it (a hot spot). Below,
// every agent is a dot coloured by state (the pool), redrawn only when an
// agent comes, goes or changes state, so 1,000 agents cost little per second.

import { ms } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
/** Past this many agents on the circle, only the busy ones and those on a cycle get a label. */
const LABEL_ALL = 40;
/** Past this many arrows, only cycle arrows and the oldest get an age label. */
const AGE_LABELS = 40;
/** About how wide one character of a label is (12 px system-ui). */
const CHAR_PX = 6.9;
const POOL_PITCH = 13;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function titled(node, text) {
  node.append(svg("title", {}, text));
  return node;
}

/** A stable hue per chain or conversation, so its arrows read as one path. */
function hue(key) {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return (h % 300) + 40; // skip reds: red means a cycle
}

/** The name, shortened with "…" to fit `px` (the full name is in the node's tooltip). */
function fit(name, px) {
  const chars = Math.max(4, Math.floor(px / CHAR_PX));
  return name.length > chars ? `${name.slice(0, chars - 1)}…` : name;
}

/** Agents on the circle: each connected group together, walked from its busiest agent. */
function circleOrder(edges, names) {
  const near = new Map();
  const load = new Map();
  for (const e of edges) {
    for (const [a, b] of [
      [e.from_id, e.to_id],
      [e.to_id, e.from_id],
    ]) {
      if (!near.has(a)) near.set(a, new Set());
      near.get(a).add(b);
    }
    load.set(e.to_id, (load.get(e.to_id) ?? 0) + e.count);
  }
  const byName = (a, b) => compare(names.get(a) ?? a, names.get(b) ?? b);
  const starts = [...near.keys()].sort((a, b) => (load.get(b) ?? 0) - (load.get(a) ?? 0) || byName(a, b));
  const order = [];
  const seen = new Set();
  for (const start of starts) {
    if (seen.has(start)) continue;
    const stack = [start];
    while (stack.length > 0) {
      const id = /** @type {string} */ (stack.pop());
      if (seen.has(id)) continue;
      seen.add(id);
      order.push(id);
      const next = [...(near.get(id) ?? [])]
        .filter((n) => !seen.has(n))
        .sort(byName)
        .reverse();
      stack.push(...next);
    }
  }
  return { order, load };
}

/**
 * Draw the wait graph of `state` into the <svg> `root`, `width` px wide.
 * Returns nothing; the test reads `.edge[data-from][data-to]` and `.cycle`.
 */
export function drawGraph(root, state, width, now = Date.now()) {
  const edges = state.waitEdges();
  const names = new Map([...state.agents.values()].map((card) => [card.id, card.name]));
  for (const e of edges) {
    names.set(e.from_id, e.from);
    names.set(e.to_id, e.to);
  }
  const { order, load } = circleOrder(edges, names);
  const pool = [...state.agents.values()];
  pool.sort((a, b) => statusRank(a) - statusRank(b) || compare(a.name, b.name));

  const w = Math.max(280, Math.floor(width));
  const circleH = order.length === 0 ? 70 : Math.round(Math.min(720, Math.max(300, w * 0.72)));
  const perRow = Math.max(1, Math.floor((w - 16) / POOL_PITCH));
  const poolRows = Math.ceil(pool.length / perRow);
  const poolTop = circleH + 22;
  const h = poolTop + poolRows * POOL_PITCH + (pool.length > 0 ? 8 : 0);
  root.setAttribute("viewBox", `0 0 ${w} ${h}`);
  root.setAttribute("width", String(w));
  root.setAttribute("height", String(h));
  root.dataset.edges = String(edges.length);
  root.dataset.cycles = String(edges.filter((e) => e.cycle).length);
  let waits = root.querySelector("g.waits");
  let poolLayer = root.querySelector("g.pool");
  if (!waits || !poolLayer) {
    waits = svg("g", { class: "waits" });
    poolLayer = svg("g", { class: "pool" });
    root.replaceChildren(markers(), waits, poolLayer);
  }
  const children = [];

  if (order.length === 0) {
    children.push(
      svg("text", { x: w / 2, y: 40, class: "graph-empty", "text-anchor": "middle" }, "nobody is waiting"),
    );
  }

  // The circle: labels go outwards, so leave room for them at the sides.
  const labelled = order.length <= LABEL_ALL;
  const cx = w / 2;
  const cy = circleH / 2;
  const room = Math.min(150, w * 0.2);
  const r = Math.max(40, Math.min(cx - room, cy - 28));
  const at = new Map();
  order.forEach((id, i) => {
    const angle = (2 * Math.PI * i) / order.length - Math.PI / 2;
    at.set(id, { x: cx + r * Math.cos(angle), y: cy + r * Math.sin(angle), angle });
  });
  const radius = (id) => 5 + Math.min(9, 2.2 * Math.sqrt(load.get(id) ?? 0));
  const inCycle = new Set();
  for (const e of edges) {
    if (e.cycle) {
      inCycle.add(e.from_id);
      inCycle.add(e.to_id);
    }
  }

  const edgeLayer = svg("g", { class: "edges" });
  const ageLayer = svg("g", { class: "ages" });
  edges.forEach((e, i) => {
    const a = at.get(e.from_id);
    const b = at.get(e.to_id);
    const attrs = {
      class: e.cycle ? "edge cycle" : "edge",
      "data-from": e.from,
      "data-to": e.to,
      "data-cycle": String(e.cycle),
    };
    const age = ms(now - e.since);
    const label = `${e.from} waits on ${e.to}: ${e.count} unanswered, oldest ${age}${e.group ? ` (${e.group})` : ""}${e.cycle ? ": on a wait cycle" : ""}`;
    const stroke = e.cycle ? undefined : e.group ? `hsl(${hue(e.group)} 70% 62%)` : undefined;
    let d;
    let mid;
    if (e.from_id === e.to_id) {
      // Waiting on itself: a small loop outside the circle.
      const ox = Math.cos(a.angle);
      const oy = Math.sin(a.angle);
      const rr = radius(e.to_id);
      const p = { x: a.x + ox * rr, y: a.y + oy * rr };
      d = `M${p.x - oy * 4},${p.y + ox * 4} C${p.x + ox * 40 - oy * 20},${p.y + oy * 40 + ox * 20} ${p.x + ox * 40 + oy * 20},${p.y + oy * 40 - ox * 20} ${p.x + oy * 4},${p.y - ox * 4}`;
      mid = { x: p.x + ox * 32, y: p.y + oy * 32 };
    } else {
      // A curve bending to the left of its direction: A → B and B → A become two arcs, a visible loop.
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const bend = Math.max(14, Math.min(60, 0.18 * len));
      const c = { x: (a.x + b.x) / 2 + (dy / len) * bend, y: (a.y + b.y) / 2 - (dx / len) * bend };
      const trim = (p, q, by) => {
        const l = Math.hypot(q.x - p.x, q.y - p.y) || 1;
        return { x: p.x + ((q.x - p.x) / l) * by, y: p.y + ((q.y - p.y) / l) * by };
      };
      const s = trim(a, c, radius(e.from_id) + 1);
      const t = trim(b, c, radius(e.to_id) + 2);
      d = `M${s.x.toFixed(1)},${s.y.toFixed(1)} Q${c.x.toFixed(1)},${c.y.toFixed(1)} ${t.x.toFixed(1)},${t.y.toFixed(1)}`;
      mid = { x: 0.25 * s.x + 0.5 * c.x + 0.25 * t.x, y: 0.25 * s.y + 0.5 * c.y + 0.25 * t.y };
    }
    const path = svg("path", {
      ...attrs,
      d,
      "marker-end": `url(#${e.cycle ? "arrow-cycle" : "arrow"})`,
      "stroke-width": (1.2 + Math.min(3, Math.log2(e.count))).toFixed(1),
    });
    if (stroke) path.style.stroke = stroke;
    edgeLayer.append(titled(path, label));
    if (edges.length <= AGE_LABELS || e.cycle || i < AGE_LABELS / 2) {
      const text = e.count > 1 ? `${e.count}× ${age}` : age;
      ageLayer.append(
        titled(
          svg(
            "text",
            {
              x: mid.x.toFixed(1),
              y: (mid.y + 4).toFixed(1),
              class: e.cycle ? "age cycle" : "age",
              "text-anchor": "middle",
            },
            text,
          ),
          label,
        ),
      );
    }
  });

  const nodeLayer = svg("g", { class: "nodes" });
  for (const id of order) {
    const { x, y, angle } = at.get(id);
    const card = state.agents.get(id);
    const status = card?.status ?? "offline";
    const name = names.get(id) ?? id;
    const g = svg("g", {
      class: `node ${inCycle.has(id) ? "cycle" : ""}`.trim(),
      "data-agent": name,
      "data-status": status,
    });
    g.append(
      svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: radius(id).toFixed(1), class: `dot-${status}` }),
    );
    const owed = load.get(id) ?? 0;
    if (labelled || inCycle.has(id) || owed >= 3) {
      const gap = radius(id) + 5;
      const lx = x + Math.cos(angle) * gap;
      const anchor = Math.abs(Math.cos(angle)) < 0.2 ? "middle" : Math.cos(angle) > 0 ? "start" : "end";
      // Only as long as fits between the node and the picture's edge.
      const px =
        anchor === "middle" ? 2 * Math.min(lx, w - lx) - 8 : anchor === "start" ? w - lx - 4 : lx - 4;
      g.append(
        svg(
          "text",
          {
            x: lx.toFixed(1),
            y: (y + Math.sin(angle) * gap + 4).toFixed(1),
            "text-anchor": anchor,
            class: "label",
          },
          fit(name, px),
        ),
      );
    }
    nodeLayer.append(titled(g, `${name} (${status})${owed ? `: ${owed} unanswered waiting on it` : ""}`));
  }
  children.push(edgeLayer, nodeLayer, ageLayer);
  waits.replaceChildren(...children);
  poolLayer.setAttribute("transform", `translate(0 ${poolTop})`);
  const key = `${perRow}|${pool.map((card) => `${card.id}${card.status[0]}`).join(",")}`;
  if (/** @type {SVGGElement} */ (poolLayer).dataset.key !== key) {
    /** @type {SVGGElement} */ (poolLayer).dataset.key = key;
    drawPool(poolLayer, pool, perRow);
  }
}

/** Every agent as a dot, offline and stale first; coordinates from the pool's own top. */
function drawPool(layer, pool, perRow) {
  const dots = [
    svg(
      "text",
      { x: 8, y: -8, class: "pool-caption" },
      `all ${pool.length} agents by state${countStatus(pool)}`,
    ),
  ];
  pool.forEach((card, i) => {
    const x = 8 + (i % perRow) * POOL_PITCH + POOL_PITCH / 2;
    const y = Math.floor(i / perRow) * POOL_PITCH + POOL_PITCH / 2;
    dots.push(
      titled(
        svg("circle", {
          cx: x,
          cy: y,
          r: 4,
          class: `dot-${card.status}`,
          "data-agent": card.name,
          "data-status": card.status,
        }),
        `${card.name} (${card.status})`,
      ),
    );
  });
  layer.replaceChildren(...dots);
}

function markers() {
  const defs = svg("defs");
  for (const [id, cls] of [
    ["arrow", "head"],
    ["arrow-cycle", "head cycle"],
  ]) {
    const marker = svg("marker", {
      id,
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
      markerUnits: "userSpaceOnUse",
    });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
    defs.append(marker);
  }
  return defs;
}

/** Names are ASCII (A-Z a-z 0-9 . _ -): a plain comparison, far cheaper than localeCompare for 1,000. */
export function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function statusRank(card) {
  return card.status === "offline" ? 0 : card.status === "stale" ? 1 : 2;
}

function countStatus(cards) {
  const off = cards.filter((c) => c.status === "offline").length;
  const stale = cards.filter((c) => c.status === "stale").length;
  const parts = [];
  if (off) parts.push(`${off} offline`);
  if (stale) parts.push(`${stale} stale`);
  return parts.length ? ` (${parts.join(", ")}, shown first)` : "";
}

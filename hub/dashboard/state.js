// The dashboard's picture of the hub, built from admin.watch events. No DOM
// here: it records what changed since the last render, so the renderer only
// touches the elements that need it, and it caps the message history.

/** Settled messages kept (and shown); unanswered ones are always kept. */
export const MAX_ROWS = 300;
/** Conversations and waiting pairs listed at most, and messages shown per conversation. */
export const MAX_GROUPS = 20;
export const MAX_THREAD = 8;
/** An answer owed longer than this puts its agent among those needing attention. */
export const OWED_MS = 10_000;

export class HubState {
  constructor() {
    this.hub = null;
    /** @type {Map<string, any>} agent id → card */
    this.agents = new Map();
    /** @type {Map<string, any>} msg_id → row, oldest first */
    this.rows = new Map();
    this.dirtyAgents = new Set();
    this.removedAgents = new Set();
    this.dirtyRows = new Set();
    this.removedRows = new Set();
    /** A snapshot arrived: render everything afresh. */
    this.reset = false;
    /** Arrival times of new messages over the last few seconds (the msg/s figure). */
    this.recent = [];
  }

  /** Apply one admin.watch event. */
  apply(event) {
    if (event.kind === "snapshot") {
      this.hub = event.hub;
      this.agents = new Map(event.agents.map((card) => [card.id, card]));
      this.rows = new Map(event.messages.map((row) => [row.msg_id, row]));
      this.dirtyAgents.clear();
      this.removedAgents.clear();
      this.dirtyRows.clear();
      this.removedRows.clear();
      this.reset = true;
    } else if (event.kind === "changes") {
      for (const card of event.agents) {
        this.agents.set(card.id, card);
        this.removedAgents.delete(card.id);
        this.dirtyAgents.add(card.id);
      }
      for (const id of event.removed) {
        this.agents.delete(id);
        this.dirtyAgents.delete(id);
        this.removedAgents.add(id);
      }
      const now = Date.now();
      for (const row of event.messages) {
        if (!this.rows.has(row.msg_id)) this.recent.push(now);
        this.rows.set(row.msg_id, row);
        this.removedRows.delete(row.msg_id);
        this.dirtyRows.add(row.msg_id);
      }
    }
    this.trim();
  }

  trim() {
    let settled = 0;
    for (const row of this.rows.values()) if (isSettled(row)) settled += 1;
    for (const [id, row] of this.rows) {
      if (settled <= MAX_ROWS) break;
      if (!isSettled(row)) continue;
      this.rows.delete(id);
      this.dirtyRows.delete(id);
      this.removedRows.add(id);
      settled -= 1;
    }
  }

  /** New messages per second over the last 5 s. */
  rate(now = Date.now()) {
    while (this.recent.length > 0 && this.recent[0] < now - 5000) this.recent.shift();
    return this.recent.length / 5;
  }

  counts() {
    const counts = { online: 0, stale: 0, offline: 0, pending: 0 };
    for (const card of this.agents.values()) counts[card.status] += 1;
    for (const row of this.rows.values()) if (!isSettled(row)) counts.pending += 1;
    return counts;
  }

  /**
   * Who waits on whom: one edge per sender → recipient with unanswered
   * messages (count, oldest, the chain or conversation of the oldest), the
   * longest-waiting first. An edge on a wait cycle (A waits on B ... waits on
   * A, nobody able to answer first) has `cycle` set.
   */
  waitEdges() {
    const pairs = new Map();
    for (const row of this.rows.values()) {
      if (isSettled(row)) continue;
      const key = `${row.from_id}>${row.to_id}`;
      const pair = pairs.get(key);
      if (pair) {
        pair.count += 1;
        if (row.created_at < pair.since) {
          pair.since = row.created_at;
          pair.group = groupOf(row);
        }
      } else {
        pairs.set(key, {
          from: row.from,
          from_id: row.from_id,
          to: row.to,
          to_id: row.to_id,
          count: 1,
          since: row.created_at,
          group: groupOf(row),
          cycle: false,
        });
      }
    }
    const edges = [...pairs.values()];
    const component = stronglyConnected(edges);
    for (const edge of edges) {
      const c = component.get(edge.from_id);
      edge.cycle = edge.from_id === edge.to_id || (c !== undefined && c === component.get(edge.to_id));
    }
    return edges.sort((a, b) => a.since - b.since);
  }

  /** The waiting pairs listed (the longest-waiting MAX_GROUPS). */
  waiting() {
    return this.waitEdges().slice(0, MAX_GROUPS);
  }

  /**
   * Agents in the order an operator should look at them: offline, then
   * stale, then those owing an answer for over OWED_MS (the longest owed
   * first), then the rest, by name. An agent that answers within seconds
   * needs no attention, and leaving it in place keeps a busy pool's cards still.
   */
  agentsByAttention(now = Date.now()) {
    const owedSince = new Map();
    for (const row of this.rows.values()) {
      if (isSettled(row)) continue;
      const since = owedSince.get(row.to_id);
      if (since === undefined || row.created_at < since) owedSince.set(row.to_id, row.created_at);
    }
    const rank = new Map();
    for (const card of this.agents.values()) {
      const since = owedSince.get(card.id);
      const owed = since !== undefined && now - since > OWED_MS;
      rank.set(card.id, { group: attention(card, owed), since: owed ? since : 0 });
    }
    return [...this.agents.values()].sort((a, b) => {
      const x = rank.get(a.id);
      const y = rank.get(b.id);
      return x.group - y.group || x.since - y.since || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
  }

  /** Messages grouped by chain_id, else conversation_id; the most recently active first. */
  conversations() {
    const groups = new Map();
    for (const row of this.rows.values()) {
      const key = row.chain_id
        ? `chain ${row.chain_id}`
        : row.conversation_id
          ? `conversation ${row.conversation_id}`
          : null;
      if (!key) continue;
      const group = groups.get(key) ?? { key, rows: [], last: 0 };
      group.rows.push(row);
      group.last = Math.max(group.last, row.settled_at ?? row.delivered_at ?? row.created_at);
      groups.set(key, group);
    }
    return [...groups.values()].sort((a, b) => b.last - a.last).slice(0, MAX_GROUPS);
  }

  agentByName(name) {
    for (const card of this.agents.values()) if (card.name === name) return card;
    return undefined;
  }

  /** Hand the change sets to the renderer and start afresh. */
  takeChanges() {
    const changes = {
      reset: this.reset,
      agents: [...this.dirtyAgents],
      removedAgents: [...this.removedAgents],
      rows: [...this.dirtyRows],
      removedRows: [...this.removedRows],
    };
    this.reset = false;
    this.dirtyAgents.clear();
    this.removedAgents.clear();
    this.dirtyRows.clear();
    this.removedRows.clear();
    return changes;
  }
}

/** 0 offline, 1 stale, 2 owes an answer for a while, 3 fine. */
export function attention(card, owed) {
  if (card.status === "offline") return 0;
  if (card.status === "stale") return 1;
  return owed ? 2 : 3;
}

function groupOf(row) {
  return row.chain_id
    ? `chain ${row.chain_id}`
    : row.conversation_id
      ? `conversation ${row.conversation_id}`
      : "";
}

/**
 * Tarjan's strongly connected components over the edges (iterative, so 2,000
 * agents cannot overflow the stack): agent id → component number, for the
 * agents in a component of two or more (the ones on a cycle).
 */
export function stronglyConnected(edges) {
  const next = new Map();
  for (const { from_id, to_id } of edges) {
    if (!next.has(from_id)) next.set(from_id, []);
    if (!next.has(to_id)) next.set(to_id, []);
    next.get(from_id).push(to_id);
  }
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const component = new Map();
  let counter = 0;
  let components = 0;
  for (const root of next.keys()) {
    if (index.has(root)) continue;
    const work = [[root, 0]];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const [node, i] = top;
      const out = next.get(node);
      if (i < out.length) {
        top[1] = i + 1;
        const to = out[i];
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push([to, 0]);
        } else if (onStack.has(to)) low.set(node, Math.min(low.get(node), index.get(to)));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) !== index.get(node)) continue;
      const members = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        members.push(member);
      } while (member !== node);
      if (members.length > 1) {
        for (const m of members) component.set(m, components);
        components += 1;
      }
    }
  }
  return component;
}

export function isSettled(row) {
  return row.state === "replied" || row.state === "error";
}

/**
 * The pool widget below the editor (each peer: name in its colour, model,
 * context use, queue depth, online/stale) and the status line saying which
 * systems are active. Colour escapes only in the terminal UI; RPC clients get
 * plain lines. A hub that cannot be reached says so in both, and since
 * when, until it answers again.
 */
import type { ExtensionContext } from "@earendil-works/pi-coding-agent";
import type { AgentCard } from "../contract/schemas.ts";
import type { ComsState, SystemSlot } from "./state.ts";

export const WIDGET_KEY = "pi-coms-pool";
export const STATUS_KEY = "pi-coms";

export function paint(text: string, color: string | undefined, enabled: boolean): string {
  if (!enabled || !color) return text;
  const hex = color.replace("#", "");
  const [r, g, b] = [0, 2, 4].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  return `\x1b[38;2;${r};${g};${b}m${text}\x1b[39m`;
}

function peerLine(peer: AgentCard, colors: boolean): string {
  const mark = peer.status === "online" ? "●" : peer.status === "stale" ? "◐" : "○";
  const bits = [
    peer.model || "model ?",
    peer.context_used_pct === null ? "ctx ?" : `ctx ${Math.round(peer.context_used_pct)}%`,
    `queue ${peer.queue_depth}`,
    peer.status,
  ];
  return `  ${paint(`${mark} ${peer.name}`, peer.color, colors)}  ${bits.join("  ")}`;
}

/** Local wall-clock time of day, HH:MM:SS. */
function clock(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}

/** "hub unreachable since 10:02:03" while the client cannot reach its hub; undefined while it can. */
export function unreachableNote(slot: SystemSlot): string | undefined {
  const link = slot.client.connection;
  if (link?.state !== "unreachable") return undefined;
  return `hub unreachable since ${clock(link.since)}`;
}

/** One sentence on the link for `/coms-net status`. */
export function connectionSentence(slot: SystemSlot): string {
  const link = slot.client.connection;
  if (!link) return "";
  const contact = link.lastContactAt ? `; last answer ${clock(link.lastContactAt)}` : "";
  if (link.state === "unreachable") {
    return ` HUB UNREACHABLE since ${clock(link.since)} (${link.lastError ?? "no answer"})${contact}; retrying on its own.`;
  }
  return ` Hub ${link.state}${contact}.`;
}

function section(slot: SystemSlot, colors: boolean): string[] {
  const self = slot.client.self;
  const where = slot.kind === "p2p" ? "coms (P2P)" : `coms-net ${slot.url ?? "hub"}`;
  const down = unreachableNote(slot);
  const header = `${where}${down ? ` · ${down.toUpperCase()}` : ""} · you: ${paint(self.name, self.color, colors)} · project ${slot.project}`;
  if (down) {
    const last = slot.peers.filter((p) => p.id !== self.id && p.status !== "offline" && !p.explicit);
    return [header, `  (peers as last seen: ${last.map((p) => p.name).join(", ") || "none"})`];
  }
  // Explicit agents (scripts, hidden helpers) stay out of the pool, as they stay out of listings.
  const peers = slot.peers.filter((p) => p.id !== self.id && p.status !== "offline" && !p.explicit);
  peers.sort((a, b) => a.name.localeCompare(b.name));
  return [header, ...(peers.length ? peers.map((p) => peerLine(p, colors)) : ["  (no peers yet)"])];
}

/** The widget's lines; empty when no system is active. */
export function poolLines(state: ComsState, colors: boolean): string[] {
  const lines: string[] = [];
  for (const slot of [state.p2p, state.hub]) if (slot) lines.push(...section(slot, colors));
  return lines;
}

export function statusText(state: ComsState, queued: number): string | undefined {
  const parts: string[] = [];
  if (state.p2p) parts.push(`coms: ${state.p2p.client.self.name}`);
  if (state.hub) {
    const down = unreachableNote(state.hub);
    parts.push(
      `coms-net: ${state.hub.client.self.name}${state.hub.startedHub ? " (hub host)" : ""}${down ? ` (${down})` : ""}`,
    );
  }
  if (parts.length === 0) return undefined;
  if (queued > 0) parts.push(`${queued} peer prompt(s) pending`);
  return parts.join(" · ");
}

/** Redraw both; safe to call often and from any event. */
export function render(state: ComsState, ctx: ExtensionContext | undefined, queued: number): void {
  if (!ctx?.hasUI) return;
  try {
    const lines = poolLines(state, ctx.mode === "tui");
    ctx.ui.setWidget(WIDGET_KEY, lines.length ? lines : undefined, { placement: "belowEditor" });
    ctx.ui.setStatus(STATUS_KEY, statusText(state, queued));
  } catch {
    // a context of an unloaded runtime; the next event redraws
  }
}

// How times, sizes and trails read on the page (shared by the table, the lists and the graph).

import { isSettled } from "./state.js";

export function ms(value) {
  if (value === undefined || value === null) return "";
  if (value < 1000) return `${Math.max(0, Math.round(value))} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  if (value < 3_600_000) return `${Math.floor(value / 60_000)} min ${Math.round((value % 60_000) / 1000)} s`;
  return `${Math.floor(value / 3_600_000)} h ${Math.floor((value % 3_600_000) / 60_000)} min`;
}

export function bytes(n) {
  if (n === undefined) return "";
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

export function clock(at) {
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

/** queued → delivered 3 ms → replied 1.2 s (times since the send), as steps. */
export function trailSteps(row) {
  const parts = ["queued"];
  if (row.delivered_at !== undefined) parts.push(`delivered ${ms(row.delivered_at - row.created_at)}`);
  if (isSettled(row)) {
    const label = row.state === "replied" ? "replied" : `error ${row.code ?? ""}`.trim();
    parts.push(`${label} ${ms((row.settled_at ?? row.created_at) - row.created_at)}`);
  }
  return parts;
}

export function trail(row) {
  return trailSteps(row).join(" → ");
}

export function stateText(row) {
  return row.state === "error" ? `error ${row.code ?? ""}`.trim() : row.state;
}

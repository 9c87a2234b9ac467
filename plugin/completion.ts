/**
 * What `/coms` and `/coms-net` accept, and the argument completion pi shows
 * while typing them. Kept free of the contract (zod) so loading the plugin
 * stays cheap; the parser in flags.ts checks values.
 */

export const COMS_SUBCOMMANDS = ["start", "stop", "status"] as const;
export const COMS_NET_SUBCOMMANDS = ["start", "connect", "disconnect", "stop", "status"] as const;

export const IDENTITY_FLAGS = ["name", "purpose", "project", "color", "explicit"] as const;
export type FlagName = (typeof IDENTITY_FLAGS)[number] | "port" | "host" | "url" | "auth-token";

/** Flags each subcommand accepts, in the order completion offers them. */
export const FLAGS_FOR: Record<string, readonly FlagName[]> = {
  "coms start": IDENTITY_FLAGS,
  "coms-net start": [...IDENTITY_FLAGS, "port", "host", "auth-token"],
  "coms-net connect": [...IDENTITY_FLAGS, "url", "auth-token"],
};

/**
 * Completion for `/coms …` and `/coms-net …`: subcommands first, then the
 * flags that subcommand takes. A word that is already complete gets no
 * suggestion: pi's Enter accepts a shown suggestion instead of submitting,
 * so offering `status ` for `status` would cost a second Enter.
 */
export function completeArgs(
  command: "coms" | "coms-net",
  prefix: string,
): Array<{ value: string; label: string }> | null {
  const subs: readonly string[] = command === "coms" ? COMS_SUBCOMMANDS : COMS_NET_SUBCOMMANDS;
  const endsWithSpace = /\s$/.test(prefix);
  const words = prefix.trim() === "" ? [] : prefix.trim().split(/\s+/);
  if (words.length === 0 || (words.length === 1 && !endsWithSpace)) {
    const start = words[0] ?? "";
    if (subs.includes(start)) return null;
    const hits = subs.filter((s) => s.startsWith(start));
    return hits.length ? hits.map((s) => ({ value: `${s} `, label: s })) : null;
  }
  const allowed = FLAGS_FOR[`${command} ${words[0]}`];
  if (!allowed) return null;
  const last = endsWithSpace ? "" : (words[words.length - 1] ?? "");
  if (last !== "" && !last.startsWith("-")) return null;
  if (last.includes("=") || allowed.some((f) => last === `--${f}`)) return null;
  const used = new Set(words.filter((w) => w.startsWith("--")).map((w) => w.slice(2).split("=")[0]));
  const base = endsWithSpace ? prefix : prefix.slice(0, prefix.length - last.length);
  const hits = allowed.filter((f) => !used.has(f) && `--${f}`.startsWith(last));
  return hits.length ? hits.map((f) => ({ value: `${base}--${f} `, label: `--${f}` })) : null;
}

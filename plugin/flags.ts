/**
 * Parsing `/coms` and `/coms-net` arguments: a shell-like tokenizer (quotes,
 * `--flag=value`), the subcommands and flags each accepts, and checks that
 * turn a bad colour, port, URL or name into a clear message before anything
 * starts. Also the identity flags on the pi command line.
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";
import { AgentName, Color, ProjectName } from "../contract/schemas.ts";

export class FlagError extends Error {
  override name = "FlagError";
}

/** Who this session is to its peers. */
export interface IdentityFlags {
  name?: string;
  purpose?: string;
  project?: string;
  color?: string;
  explicit?: boolean;
}

/** Identity plus the networked-only settings. */
export interface NetFlags extends IdentityFlags {
  port?: number;
  host?: string;
  url?: string;
  token?: string;
}

export type ComsCommand =
  | { system: "p2p"; action: "refresh" | "stop" | "status" }
  | { system: "p2p"; action: "start"; flags: IdentityFlags };

export type ComsNetCommand =
  | { system: "hub"; action: "refresh" | "disconnect" | "stop" | "status" }
  | { system: "hub"; action: "start" | "connect"; flags: NetFlags };

export const COMS_SUBCOMMANDS = ["start", "stop", "status"] as const;
export const COMS_NET_SUBCOMMANDS = ["start", "connect", "disconnect", "stop", "status"] as const;

const IDENTITY = ["name", "purpose", "project", "color", "explicit"] as const;
type FlagName = (typeof IDENTITY)[number] | "port" | "host" | "url" | "auth-token";

/** Flags each subcommand accepts, in the order completion offers them. */
export const FLAGS_FOR: Record<string, readonly FlagName[]> = {
  "coms start": IDENTITY,
  "coms-net start": [...IDENTITY, "port", "host", "auth-token"],
  "coms-net connect": [...IDENTITY, "url", "auth-token"],
};

const BOOLEAN_FLAGS = new Set<FlagName>(["explicit"]);

/** Split like a shell would: whitespace separates, single or double quotes group, backslash escapes. */
export function tokenize(input: string): string[] {
  const tokens: string[] = [];
  let current = "";
  let inToken = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < input.length; i++) {
    const ch = input[i] as string;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === "\\" && quote === '"' && i + 1 < input.length) current += input[++i];
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inToken = true;
    } else if (ch === "\\" && i + 1 < input.length) {
      current += input[++i];
      inToken = true;
    } else if (/\s/.test(ch)) {
      if (inToken) tokens.push(current);
      current = "";
      inToken = false;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (quote) throw new FlagError(`unclosed ${quote} quote`);
  if (inToken) tokens.push(current);
  return tokens;
}

function checkName(value: string): string {
  const parsed = AgentName.safeParse(value);
  if (!parsed.success)
    throw new FlagError(`bad --name ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`);
  return value;
}

function checkProject(value: string): string {
  const parsed = ProjectName.safeParse(value);
  if (!parsed.success)
    throw new FlagError(`bad --project ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`);
  return value;
}

function checkColor(value: string): string {
  const withHash = value.startsWith("#") ? value : `#${value}`;
  if (!Color.safeParse(withHash).success)
    throw new FlagError(`bad --color ${JSON.stringify(value)}: use a hex colour like #1e90ff`);
  return withHash.toLowerCase();
}

function checkPort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(port) || port > 65535)
    throw new FlagError(
      `bad --port ${JSON.stringify(value)}: use a number from 0 to 65535 (0 lets the OS choose)`,
    );
  return port;
}

function checkHost(value: string): string {
  if (!/^[A-Za-z0-9.:_[\]-]{1,253}$/.test(value))
    throw new FlagError(`bad --host ${JSON.stringify(value)}: use an address such as 127.0.0.1 or 0.0.0.0`);
  return value;
}

function checkUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new FlagError(`bad --url ${JSON.stringify(value)}: use http://host:port`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new FlagError(`bad --url ${JSON.stringify(value)}: only http:// and https:// are supported`);
  // A token in the URL would end up in logs and process listings.
  if (url.username || url.password || url.search)
    throw new FlagError("bad --url: pass the token with --auth-token, not inside the URL");
  return url.origin + url.pathname.replace(/\/+$/, "");
}

function checkPurpose(value: string): string {
  if (value.length > 500) throw new FlagError("--purpose is limited to 500 characters");
  return value;
}

function parseFlags(tokens: string[], allowed: readonly FlagName[], where: string): NetFlags {
  const flags: NetFlags = {};
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (!token.startsWith("--"))
      throw new FlagError(`unexpected argument ${JSON.stringify(token)} for ${where}`);
    const eq = token.indexOf("=");
    const key = (eq === -1 ? token.slice(2) : token.slice(2, eq)) as FlagName;
    if (!allowed.includes(key)) {
      const list = allowed.map((f) => `--${f}`).join(" ");
      throw new FlagError(
        `unknown flag --${key} for ${where}${list ? ` (accepted: ${list})` : " (it takes no flags)"}`,
      );
    }
    let value: string | undefined = eq === -1 ? undefined : token.slice(eq + 1);
    if (BOOLEAN_FLAGS.has(key)) {
      if (value !== undefined && value !== "true" && value !== "false")
        throw new FlagError(`--${key} takes no value (or =true / =false)`);
      flags.explicit = value !== "false";
      continue;
    }
    if (value === undefined) {
      const next = tokens[i + 1];
      if (next === undefined || next.startsWith("--")) throw new FlagError(`--${key} needs a value`);
      value = next;
      i++;
    }
    switch (key) {
      case "name":
        flags.name = checkName(value);
        break;
      case "purpose":
        flags.purpose = checkPurpose(value);
        break;
      case "project":
        flags.project = checkProject(value);
        break;
      case "color":
        flags.color = checkColor(value);
        break;
      case "port":
        flags.port = checkPort(value);
        break;
      case "host":
        flags.host = checkHost(value);
        break;
      case "url":
        flags.url = checkUrl(value);
        break;
      case "auth-token":
        if (value.length < 16) throw new FlagError("--auth-token must be at least 16 characters");
        flags.token = value;
        break;
    }
  }
  return flags;
}

function subcommand(tokens: string[], known: readonly string[], command: string): string | undefined {
  const sub = tokens[0];
  if (sub === undefined) return undefined;
  if (!known.includes(sub))
    throw new FlagError(
      `unknown subcommand ${JSON.stringify(sub)} for /${command} (use: ${known.join(", ")})`,
    );
  return sub;
}

export function parseComs(args: string): ComsCommand {
  const tokens = tokenize(args);
  const sub = subcommand(tokens, COMS_SUBCOMMANDS, "coms");
  if (sub === undefined) return { system: "p2p", action: "refresh" };
  if (sub === "start") {
    return {
      system: "p2p",
      action: "start",
      flags: parseFlags(tokens.slice(1), FLAGS_FOR["coms start"] ?? [], "/coms start"),
    };
  }
  parseFlags(tokens.slice(1), [], `/coms ${sub}`);
  return { system: "p2p", action: sub as "stop" | "status" };
}

export function parseComsNet(args: string): ComsNetCommand {
  const tokens = tokenize(args);
  const sub = subcommand(tokens, COMS_NET_SUBCOMMANDS, "coms-net");
  if (sub === undefined) return { system: "hub", action: "refresh" };
  if (sub === "start" || sub === "connect") {
    const where = `/coms-net ${sub}`;
    return {
      system: "hub",
      action: sub,
      flags: parseFlags(tokens.slice(1), FLAGS_FOR[`coms-net ${sub}`] ?? [], where),
    };
  }
  parseFlags(tokens.slice(1), [], `/coms-net ${sub}`);
  return { system: "hub", action: sub as "disconnect" | "stop" | "status" };
}

/** Completion for `/coms …` and `/coms-net …`: subcommands first, then the flags that subcommand takes. */
export function completeArgs(
  command: "coms" | "coms-net",
  prefix: string,
): Array<{ value: string; label: string }> | null {
  const subs = command === "coms" ? COMS_SUBCOMMANDS : COMS_NET_SUBCOMMANDS;
  const endsWithSpace = /\s$/.test(prefix);
  const words = prefix.trim() === "" ? [] : prefix.trim().split(/\s+/);
  if (words.length === 0 || (words.length === 1 && !endsWithSpace)) {
    const start = words[0] ?? "";
    const hits = subs.filter((s) => s.startsWith(start));
    return hits.length ? hits.map((s) => ({ value: `${s} `, label: s })) : null;
  }
  const allowed = FLAGS_FOR[`${command} ${words[0]}`];
  if (!allowed) return null;
  const last = endsWithSpace ? "" : (words[words.length - 1] ?? "");
  if (last !== "" && !last.startsWith("-")) return null;
  const used = new Set(words.filter((w) => w.startsWith("--")).map((w) => w.slice(2).split("=")[0]));
  const base = endsWithSpace ? prefix : prefix.slice(0, prefix.length - last.length);
  const hits = allowed.filter((f) => !used.has(f) && `--${f}`.startsWith(last));
  return hits.length ? hits.map((f) => ({ value: `${base}--${f} `, label: `--${f}` })) : null;
}

/**
 * pi already owns `--name` (the session's display name), so the agent name
 * on the command line is `--coms-name`; without it a valid session name is
 * used, which makes `pi --name coder` name the agent too.
 */
export const CLI_FLAGS = {
  "coms-name": {
    type: "string",
    description: "pi-coms agent name (default: the session name given with --name)",
  },
  purpose: { type: "string", description: "pi-coms: this agent's purpose, shown to peers" },
  project: {
    type: "string",
    description: "pi-coms: project namespace for discovery (default: derived from cwd)",
  },
  color: { type: "string", description: "pi-coms: colour for the pool widget, #RRGGBB" },
  explicit: {
    type: "boolean",
    description: "pi-coms: hide this agent from listings (reachable by exact name)",
  },
  coms: { type: "boolean", description: "pi-coms: run /coms start at session start" },
  "coms-net": { type: "boolean", description: "pi-coms: run /coms-net start at session start" },
} as const;

export function registerCliFlags(pi: ExtensionAPI): void {
  for (const [name, spec] of Object.entries(CLI_FLAGS)) {
    if (spec.type === "boolean") pi.registerFlag(name, { type: "boolean", description: spec.description });
    else pi.registerFlag(name, { type: "string", description: spec.description });
  }
}

/** Identity defaults from the pi command line; bad values are reported, not silently dropped. */
export function cliIdentity(pi: ExtensionAPI): { flags: IdentityFlags; errors: string[] } {
  const flags: IdentityFlags = {};
  const errors: string[] = [];
  const str = (key: string): string | undefined => {
    const value = pi.getFlag(key);
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch (error) {
      errors.push((error as Error).message);
    }
  };
  const name = str("coms-name");
  if (name) attempt(() => (flags.name = checkName(name)));
  else {
    const sessionName = pi.getSessionName();
    if (sessionName && AgentName.safeParse(sessionName).success) flags.name = sessionName;
  }
  const purpose = str("purpose");
  if (purpose) attempt(() => (flags.purpose = checkPurpose(purpose)));
  const project = str("project");
  if (project) attempt(() => (flags.project = checkProject(project)));
  const color = str("color");
  if (color) attempt(() => (flags.color = checkColor(color)));
  if (pi.getFlag("explicit") === true) flags.explicit = true;
  return { flags, errors };
}

/** Command-line defaults under the flags typed in the command. */
export function withDefaults<T extends IdentityFlags>(typed: T, defaults: IdentityFlags): T {
  const merged = { ...defaults } as T;
  for (const [key, value] of Object.entries(typed))
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  return merged;
}

/**
 * Parsing `/coms` and `/coms-net` arguments: a shell-like tokenizer (quotes,
 * `--flag=value`), the subcommands and flags each accepts, and checks that
 * turn a bad colour, port, URL or name into a clear message before anything
 * starts. Also the checks of the identity flags given on the pi command line.
 * Loaded when a command runs, not with the plugin (it needs the contract).
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";
import { AgentName, Color, ProjectName } from "../contract/schemas.ts";
import { COMS_NET_SUBCOMMANDS, COMS_SUBCOMMANDS, FLAGS_FOR, type FlagName } from "./completion.ts";

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
        // Several hubs of one project (a Redis-backed cluster): comma-separated, tried in turn.
        flags.url = value.split(",").map(checkUrl).join(",");
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

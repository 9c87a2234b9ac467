/**
 * The flag and variable tables in docs/*.md, generated from what the code
 * parses: the hub's parseArgs options and help (hub/cli-options.ts), the
 * CLI's command specs (client/cli-args.ts), the pi flags (plugin/cli-flags.ts)
 * and the settings readers (lib/env.ts, hub/cluster/settings.ts), the MCP ones included. Variable
 * names and defaults are found by calling the readers with a recording
 * environment, so a variable the code reads cannot be missing from a table.
 *
 * A table lives between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`.
 *   node scripts/docs-tables.ts          rewrite the blocks in docs/*.md (npm run docs:tables)
 *   node scripts/docs-tables.ts --check  exit 1 naming each block that is out of date
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { COMMANDS, COMMON, type OptionSpec } from "../client/cli-args.ts";
import { HUB_HELP, HUB_OPTIONS } from "../hub/cli-options.ts";
import { clusterSettings } from "../hub/cluster/settings.ts";
import { comsDir, comsNetDir, hubSettings, mcpSettings, p2pSettings } from "../lib/env.ts";
import { CLI_FLAGS } from "../plugin/cli-flags.ts";

export const DOCS = resolve(import.meta.dirname, "..", "docs");

/** What each variable means; its name and default come from the code. */
const VARIABLE_MEANING: Record<string, string> = {
  PI_COMS_DIR: "root of the P2P registry and (when short enough) the sockets",
  PI_COMS_TIMEOUT_MS: "default `await` timeout",
  PI_COMS_MAX_HOPS: "a message may be forwarded this many times; checked by sender and receiver",
  PI_COMS_PING_INTERVAL_MS:
    "how often each peer's card (model, context %, queue depth) is fetched; `0` turns it off",
  PI_COMS_KEEP_SETTLED: "settled inbound messages a node keeps for its senders' late `get`",
  PI_COMS_KEEP_SETTLED_BYTES:
    "and their approximate size at most (replies; prompts are dropped once settled)",
  PI_COMS_KEEP_OUTCOMES: "final outcomes of a node's own sends kept for a late `get` / `await`",
  PI_COMS_KEEP_OUTCOMES_BYTES: "and their approximate size at most",
  PI_COMS_NET_DIR: "root of the hub's files (per project: token, discovery file, store, log)",
  PI_COMS_NET_HOST: "hub bind address",
  PI_COMS_NET_PORT: "hub port (`0`: the OS picks)",
  PI_COMS_NET_AUTH_TOKEN:
    "hub token, for the hub and for clients (unset: the stored one, else a generated one)",
  PI_COMS_NET_SERVER_URL:
    "hub URL (or comma-separated URLs) for clients; unset: the project's discovery file",
  PI_COMS_NET_TLS_CERT: "hub: PEM certificate file; with the key, serve HTTPS",
  PI_COMS_NET_TLS_KEY: "hub: PEM private key file",
  PI_COMS_NET_MAX_HOPS: "hop limit",
  PI_COMS_NET_MESSAGE_TTL_MS: "how long a message waits for its reply before it ends `EXPIRED`",
  PI_COMS_NET_HEARTBEAT_MS:
    "client heartbeat interval (the hub client beats only while it has no inbox stream open, or for a card change)",
  PI_COMS_NET_STALE_AFTER_MS: "silence before an agent shows as stale",
  PI_COMS_NET_OFFLINE_AFTER_MS: "silence before an agent shows as offline",
  PI_COMS_NET_MAX_SENDS_PER_SEC: "hub: sends per second per agent (bursts of twice that); `0` = no limit",
  PI_COMS_NET_DASHBOARD_CONTENT: "hub: `off` keeps prompt and reply text off the dashboard",
  PI_COMS_NET_MAX_STREAM_BUFFER_BYTES:
    "hub: bytes a stream's reader may fall behind before events are held for it",
  PI_COMS_NET_MAX_QUEUE:
    "hub: unanswered messages per recipient before sends are refused `QUEUE_FULL`; `0` = no limit",
  PI_COMS_NET_MAX_QUEUED_BYTES:
    "hub: bytes of unanswered messages and untaken replies the whole hub may hold; `0` = no limit",
  PI_COMS_NET_MAX_QUEUED_BYTES_PER_AGENT:
    "hub: each agent's share of that, as a sender (unanswered messages, untaken replies) and as a recipient (its queue); unset: an eighth of it; `0` = no share",
  PI_COMS_NET_STREAM_GRACE_MS:
    "hub: an agent whose inbox stream closed and that opens none again within this long ends what it was handed `PEER_GONE`; `0` = only when its presence lapses",
  PI_COMS_NET_MAX_STREAMS_PER_AGENT:
    "hub: inbox streams per agent; past it the oldest is closed; `0` = no limit",
  PI_COMS_NET_REAP_AFTER_MS:
    "hub: remove agents offline this long, or never connected this long after registering; `0` = never",
  PI_COMS_NET_MAX_PENDING_REGISTRATIONS:
    "hub: agents registered but not yet connected, at most; `0` = no limit",
  PI_COMS_NET_SQLITE_SYNC:
    "hub on SQLite: `normal` survives a killed hub; `full` also an OS crash or power loss, for an fsync per commit",
  PI_COMS_NET_REDIS_URL: "hub: use the shared Redis store at this URL (a password here stays out of `ps`)",
  PI_COMS_NET_LEASE_MS:
    "hub on Redis: how long a dead active hub keeps the project before another takes over",
  PI_COMS_NET_CLUSTER_HOST: "hub on Redis: bind address of its backend listener (unset: `--host`)",
  PI_COMS_NET_CLUSTER_PORT: "hub on Redis: port of its backend listener (`0`: the OS picks)",
  PI_COMS_NET_ADVERTISE_HOST: "hub on Redis: how the other hubs reach it (unset: the cluster host)",
  PI_COMS_MCP_MAX_WAIT_MS:
    "longest one `coms_await` / `coms_receive` call blocks before it says to call again",
  PI_COMS_MCP_PROGRESS_MS:
    "progress notification interval while a call blocks (when the request asks for progress)",
  PI_COMS_NET_MAX_MCP_SESSIONS: "hub: open `/mcp` sessions at most (503 past it); `0` = no limit",
  PI_COMS_NET_MCP_IDLE_MS:
    "hub: close an `/mcp` session with no request and no open stream this long; `0` = never",
};

type Reader = (env: NodeJS.ProcessEnv) => unknown;

/** The variables a reader looks at, in order, with the default it falls back to for each. */
function variables(readers: Reader[]): Array<{ name: string; fallback: unknown }> {
  const found: Array<{ name: string; fallback: unknown }> = [];
  for (const read of readers) {
    const names: string[] = [];
    const recording = new Proxy({} as NodeJS.ProcessEnv, {
      get(_target, key) {
        if (typeof key === "string" && !names.includes(key)) names.push(key);
        return undefined;
      },
    });
    const defaults = read(recording);
    for (const name of names) {
      if (found.some((f) => f.name === name)) continue;
      found.push({ name, fallback: fallbackOf(read, defaults, name) });
    }
  }
  return found;
}

/** The default behind one variable: the part of the reader's result that changes when it is set. */
function fallbackOf(read: Reader, defaults: unknown, name: string): unknown {
  if (typeof defaults !== "object" || defaults === null) return defaults;
  for (const probe of ["7", "off", "full", "probe"]) {
    let changed: unknown;
    try {
      changed = read({ [name]: probe });
    } catch {
      continue;
    }
    for (const [key, value] of Object.entries(changed as object)) {
      if (value !== (defaults as Record<string, unknown>)[key])
        return (defaults as Record<string, unknown>)[key];
    }
  }
  throw new Error(`${name}: read by the settings, but setting it changes nothing`);
}

function shown(value: unknown): string {
  if (value === undefined) return "unset";
  if (typeof value === "boolean") return value ? "`on`" : "`off`";
  if (typeof value === "number") {
    const unit = (size: number, name: string) =>
      value >= size && value % size === 0 && ` (${value / size} ${name})`;
    return `\`${value}\`${unit(1024 ** 3, "GiB") || unit(1024 ** 2, "MiB") || ""}`;
  }
  return `\`${String(value).replace(homedir(), "~")}\``;
}

function variableTable(readers: Reader[]): string {
  const rows = variables(readers).map(({ name, fallback }) => {
    const meaning = VARIABLE_MEANING[name];
    if (!meaning) throw new Error(`${name} is read by the code but has no meaning in scripts/docs-tables.ts`);
    return `| \`${name}\` | ${shown(fallback)} | ${meaning} |`;
  });
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

/** Each `--flag` entry of the hub's help text, with its continuation lines joined. */
function hubHelpEntries(): Map<string, { flag: string; text: string }> {
  const entries = new Map<string, { flag: string; text: string }>();
  let current: { flag: string; text: string } | undefined;
  for (const line of HUB_HELP.split("\n")) {
    const start = /^ {2}(?:-\w, )?--([a-z-]+)(.*)$/.exec(line);
    if (start) {
      const [, name = "", rest = ""] = start;
      // " ARG   text", "   text" or " ARG" alone (its text on the next lines).
      const [, arg, text = ""] = /^(?: (\S+))?(?:\s{2,}(.*))?$/.exec(rest) ?? [];
      current = { flag: `--${name}${arg ? ` ${arg}` : ""}`, text };
      entries.set(name, current);
    } else if (current && /^ {20,}\S/.test(line)) {
      current.text = `${current.text} ${line.trim()}`.trim();
    } else {
      current = undefined;
    }
  }
  return entries;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replace(/\$(PI_COMS_[A-Z_]+)/g, "`$1`");
}

function hubFlagTable(): string {
  const help = hubHelpEntries();
  const rows = Object.entries(HUB_OPTIONS).map(([name, option]) => {
    const entry = help.get(name);
    if (!entry) throw new Error(`hub option --${name} is parsed but not in the hub's --help`);
    const short = "short" in option ? `-${option.short}, ` : "";
    return `| \`${cell(short + entry.flag)}\` | ${cell(entry.text)} |`;
  });
  for (const name of help.keys())
    if (!(name in HUB_OPTIONS)) throw new Error(`the hub's --help names --${name}, which it does not parse`);
  return ["| flag | meaning |", "| --- | --- |", ...rows].join("\n");
}

function optionCell(name: string, option: OptionSpec): string {
  return `\`${option.short ? `-${option.short}, ` : ""}--${name}${option.arg ? ` ${option.arg}` : ""}\``;
}

function cliTable(): string {
  const rows = Object.values(COMMANDS).map((spec) => {
    const options = Object.entries(spec.options).map(
      ([key, option]) => `${optionCell(key, option)} ${option.help}`,
    );
    return `| \`${cell(spec.usage)}\` | ${cell(spec.summary)} | ${cell(options.join("; ")) || ""} |`;
  });
  const common = Object.entries(COMMON).map(
    ([key, option]) => `| ${optionCell(key, option)} | ${cell(option.help)} |`,
  );
  return [
    "| command | what it does | its own options |",
    "| --- | --- | --- |",
    ...rows,
    "",
    "Options every command takes:",
    "",
    "| option | meaning |",
    "| --- | --- |",
    ...common,
  ].join("\n");
}

function piFlagTable(): string {
  const rows = Object.entries(CLI_FLAGS).map(([name, spec]) => {
    const arg = spec.type === "string" ? " VALUE" : "";
    return `| \`--${name}${arg}\` | ${cell(spec.description.replace(/^pi-coms:\s*/, ""))} |`;
  });
  return ["| pi flag | meaning |", "| --- | --- |", ...rows].join("\n");
}

/** Every generated block, by name. */
export const TABLES: Record<string, () => string> = {
  "hub-flags": hubFlagTable,
  "hub-variables": () => variableTable([hubSettings, clusterSettings, comsNetDir]),
  "p2p-variables": () => variableTable([comsDir, p2pSettings]),
  "mcp-variables": () => variableTable([mcpSettings]),
  "cli-commands": cliTable,
  "pi-flags": piFlagTable,
};

const BLOCK = /(<!-- generated:([a-z0-9-]+) -->\n)([\s\S]*?)(<!-- \/generated:\2 -->)/g;

/** Each docs page with its blocks regenerated; `used` collects the block names found. */
export function regenerate(text: string, used = new Set<string>()): string {
  return text.replace(BLOCK, (_all, open: string, name: string, _old: string, close: string) => {
    const make = TABLES[name];
    if (!make) throw new Error(`unknown generated block "${name}"`);
    used.add(name);
    return `${open}${make()}\n${close}`;
  });
}

export function docsPages(): string[] {
  return readdirSync(DOCS)
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(DOCS, f));
}

if (import.meta.main) {
  const check = process.argv.includes("--check");
  const used = new Set<string>();
  let stale = 0;
  for (const file of docsPages()) {
    const text = readFileSync(file, "utf8");
    const next = regenerate(text, used);
    if (next === text) continue;
    if (check) {
      console.error(`${file}: a generated table is out of date (npm run docs:tables)`);
      stale++;
    } else {
      writeFileSync(file, next);
      console.log(`updated ${file}`);
    }
  }
  for (const name of Object.keys(TABLES))
    if (!used.has(name)) {
      console.error(`no page holds the generated block "${name}"`);
      stale++;
    }
  process.exitCode = stale > 0 ? 1 : 0;
}

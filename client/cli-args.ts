/**
 * Parsing the `pi-coms` command line into one typed command, and the help
 * texts. Pure: no I/O, so every bad argument is rejected before anything
 * connects or changes.
 */
import { parseArgs } from "node:util";
import type { z } from "zod";
import { AgentName, Color, MsgId, ProjectName } from "../contract/schemas.ts";

export class UsageError extends Error {
  /** The command whose usage line to show with the message. */
  readonly command: CommandName | undefined;
  constructor(message: string, command?: CommandName) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Placeholder shown in help for a string option. */
  arg?: string;
  help: string;
}

export const COMMON: Record<string, OptionSpec> = {
  net: { type: "boolean", help: "use the hub (HTTP + SSE) instead of P2P Unix sockets" },
  project: {
    type: "string",
    arg: "NS",
    help: "project namespace (default: derived from the current directory)",
  },
  name: { type: "string", arg: "NAME", help: "this agent's name (default: cli; a taken name gets a suffix)" },
  purpose: { type: "string", arg: "TEXT", help: "this agent's purpose, shown to peers" },
  url: {
    type: "string",
    arg: "URL",
    help: "hub URL, implies --net (default: $PI_COMS_NET_SERVER_URL, else the project's local hub)",
  },
  "auth-token": {
    type: "string",
    arg: "TOKEN",
    help: "hub bearer token, implies --net (default: $PI_COMS_NET_AUTH_TOKEN, else the local secret)",
  },
  json: { type: "boolean", help: "machine-readable JSON on stdout" },
  help: { type: "boolean", short: "h", help: "show help for this command" },
};

export type CommandName = "list" | "send" | "get" | "await" | "listen" | "hub" | "mcp";

export interface CommandSpec {
  usage: string;
  summary: string;
  details: string;
  options: Record<string, OptionSpec>;
  /** Names of the positional arguments, all required. */
  args: string[];
}

const TIMEOUT: OptionSpec = {
  type: "string",
  arg: "MS",
  help: "give up after MS milliseconds (exit 4); default: the transport's reply timeout",
};

export const COMMANDS: Record<CommandName, CommandSpec> = {
  list: {
    usage: "pi-coms list [--all] [options]",
    summary: "list the agents of the project",
    details: "Prints name, status, model, context use, queue depth and purpose of every agent.",
    options: { all: { type: "boolean", help: "include explicit (hidden) agents" } },
    args: [],
  },
  send: {
    usage: "pi-coms send <to> <prompt> [--await] [--timeout MS] [options]",
    summary: "send a prompt to an agent",
    details: [
      "Prints the msg_id once the recipient (P2P) or the hub (--net) accepted the message.",
      "With --await, waits and prints the reply instead. A prompt of - is read from stdin.",
      "Over P2P the reply can only reach the process that sent the message: use --await.",
    ].join("\n"),
    options: {
      await: { type: "boolean", help: "wait for the reply and print it" },
      timeout: TIMEOUT,
    },
    args: ["to", "prompt"],
  },
  get: {
    usage: "pi-coms get <msg_id> --net [options]",
    summary: "show the state of a sent message without waiting (hub only)",
    details: [
      "Prints pending, the reply, or the error. The hub keeps outcomes per sender: use the",
      "same --project and --name as the send (the CLI resumes its saved hub identity).",
    ].join("\n"),
    options: {},
    args: ["msg_id"],
  },
  await: {
    usage: "pi-coms await <msg_id> --net [--timeout MS] [options]",
    summary: "wait for the reply to a sent message (hub only)",
    details: "Like get, but waits for the reply or an error. Same identity rules as get.",
    options: { timeout: TIMEOUT },
    args: ["msg_id"],
  },
  listen: {
    usage: 'pi-coms listen [--exec "CMD"] [--max N] [options]',
    summary: "join as an agent and answer prompts from the shell",
    details: [
      "Joins under --name (default: shell) and prints each inbound prompt. Without --exec the",
      "reply is the next line read from stdin; with --exec the command runs through the shell",
      "with the prompt on its stdin, and its stdout is the reply (a non-zero exit answers with",
      "an error). Prompts are answered one at a time in arrival order. Ctrl-C leaves cleanly.",
    ].join("\n"),
    options: {
      exec: { type: "string", arg: "CMD", help: "answer each prompt with this command's stdout" },
      max: { type: "string", arg: "N", help: "exit after answering N prompts" },
      explicit: { type: "boolean", help: "hide from listings (reachable by exact name)" },
      color: { type: "string", arg: "#RRGGBB", help: "colour shown in pool widgets" },
    },
    args: [],
  },
  hub: {
    usage: "pi-coms hub start|stop|status|open [--host ADDR] [--port N] [options]",
    summary: "start, stop or inspect the project's local hub, or sign in to its dashboard",
    details: [
      "start: find the project's running hub or start one in the background (prints its URL).",
      "stop: shut the project's hub down. status: running or not, URL and pid (exit 6 if none).",
      "open: print the dashboard's URL and a one-time sign-in code (2 minutes, single use).",
      "The token is never printed; it lives in ~/.pi/coms-net/projects/<project>/server.secret.json.",
    ].join("\n"),
    options: {
      host: { type: "string", arg: "ADDR", help: "bind address for start (default 127.0.0.1)" },
      port: { type: "string", arg: "N", help: "port for start (default: OS-chosen)" },
    },
    args: ["action"],
  },
  mcp: {
    usage: "pi-coms mcp [--hub [URL,...]] [--name N] [--purpose T] [--color #RRGGBB] [--explicit] [options]",
    summary: "serve MCP on stdio: another coding agent joins the pool as a peer",
    details: [
      "Started by an MCP client (Claude Code, Codex, Cursor, Gemini CLI, ...), never by hand: stdin and",
      "stdout carry MCP. Joins over P2P, or a hub with --hub (its URL or a comma-separated list, or",
      "the project's local hub when none is given). The agent's name defaults to the MCP client's",
      "name (e.g. claude-code); it leaves when the client closes the connection.",
    ].join("\n"),
    options: {
      hub: {
        type: "string",
        arg: "[URL,...]",
        help: "join a hub instead of P2P (default URL: $PI_COMS_NET_SERVER_URL, else the local hub)",
      },
      explicit: { type: "boolean", help: "hide from listings (reachable by exact name)" },
      color: { type: "string", arg: "#RRGGBB", help: "colour shown in pool widgets" },
    },
    args: [],
  },
};

export interface CommonOptions {
  net: boolean;
  project?: string;
  name?: string;
  purpose?: string;
  url?: string;
  token?: string;
  json: boolean;
}

export type HubAction = "start" | "stop" | "status" | "open";

export type Command =
  | { kind: "help"; text: string }
  | { kind: "list"; common: CommonOptions; all: boolean }
  | { kind: "send"; common: CommonOptions; to: string; prompt: string; await: boolean; timeoutMs?: number }
  | { kind: "get"; common: CommonOptions; msgId: string }
  | { kind: "await"; common: CommonOptions; msgId: string; timeoutMs?: number }
  | {
      kind: "listen";
      common: CommonOptions;
      exec?: string;
      max?: number;
      explicit: boolean;
      color?: string;
    }
  | { kind: "hub"; common: CommonOptions; action: HubAction; host?: string; port?: number }
  | { kind: "mcp"; common: CommonOptions; explicit: boolean; color?: string };

function isCommandName(value: string): value is CommandName {
  return Object.hasOwn(COMMANDS, value);
}

export function parseCommandLine(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h") return { kind: "help", text: mainHelp() };
  if (first === "help") {
    const topic = rest[0];
    if (topic === undefined) return { kind: "help", text: mainHelp() };
    if (!isCommandName(topic)) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
    return { kind: "help", text: commandHelp(topic) };
  }
  if (!isCommandName(first)) {
    throw new UsageError(
      first.startsWith("-")
        ? `expected a command before ${JSON.stringify(first)}`
        : `unknown command ${JSON.stringify(first)}`,
    );
  }
  return parseCommand(first, first === "mcp" ? bareHub(rest) : rest);
}

/** `--hub` may stand alone (the project's local hub): give it an empty value for parseArgs. */
function bareHub(argv: string[]): string[] {
  return argv.map((arg, i) => {
    const next = argv[i + 1];
    return arg === "--hub" && (next === undefined || next.startsWith("-")) ? "--hub=" : arg;
  });
}

function parseCommand(name: CommandName, argv: string[]): Command {
  const spec = COMMANDS[name];
  const options = { ...COMMON, ...spec.options };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(options).map(([key, o]) => [
          key,
          o.short ? { type: o.type, short: o.short } : { type: o.type },
        ]),
      ),
      strict: true,
      allowPositionals: true,
    }) as typeof parsed;
  } catch (error) {
    throw new UsageError(cleanParseError(error), name);
  }
  const v = parsed.values;
  if (v.help) return { kind: "help", text: commandHelp(name) };
  const pos = parsed.positionals;
  if (pos.length < spec.args.length) {
    throw new UsageError(`missing <${spec.args[pos.length]}>`, name);
  }
  if (pos.length > spec.args.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(pos[spec.args.length])}`, name);
  }
  const common = commonOptions(v, name);
  const at = (i: number) => pos[i] ?? "";
  switch (name) {
    case "list":
      return { kind: "list", common, all: v.all === true };
    case "send": {
      const prompt = at(1);
      if (prompt === "") throw new UsageError("the prompt is empty", name);
      const timeoutMs = optionalInt(v.timeout, "--timeout", name, 1);
      if (timeoutMs !== undefined && v.await !== true) throw new UsageError("--timeout needs --await", name);
      return {
        kind: "send",
        common,
        to: checked(AgentName, at(0), "<to>", name),
        prompt,
        await: v.await === true,
        ...(timeoutMs !== undefined && { timeoutMs }),
      };
    }
    case "get":
    case "await": {
      const msgId = checked(MsgId, at(0), "<msg_id>", name);
      if (!common.net) {
        throw new UsageError(
          `${name} by msg_id needs the hub (--net): over P2P the reply only reaches the process that sent the message, so use "pi-coms send <to> <prompt> --await"`,
          name,
        );
      }
      if (name === "get") return { kind: "get", common, msgId };
      const timeoutMs = optionalInt(v.timeout, "--timeout", name, 1);
      return { kind: "await", common, msgId, ...(timeoutMs !== undefined && { timeoutMs }) };
    }
    case "listen": {
      const max = optionalInt(v.max, "--max", name, 1);
      if (typeof v.exec === "string" && v.exec.trim() === "") throw new UsageError("--exec is empty", name);
      return {
        kind: "listen",
        common,
        explicit: v.explicit === true,
        ...(typeof v.exec === "string" && { exec: v.exec }),
        ...(max !== undefined && { max }),
        ...(typeof v.color === "string" && { color: checked(Color, v.color, "--color", name) }),
      };
    }
    case "mcp": {
      const hub = typeof v.hub === "string" ? v.hub.trim() : undefined;
      if (hub)
        for (const url of hub.split(",").filter((u) => u.trim())) checkedUrl(url.trim(), "--hub", name);
      return {
        kind: "mcp",
        common: {
          ...common,
          net: common.net || hub !== undefined,
          ...(hub ? { url: hub } : {}),
        },
        explicit: v.explicit === true,
        ...(typeof v.color === "string" && { color: checked(Color, v.color, "--color", name) }),
      };
    }
    case "hub": {
      const action = at(0);
      if (action !== "start" && action !== "stop" && action !== "status" && action !== "open") {
        throw new UsageError(
          `hub action must be start, stop, status or open, got ${JSON.stringify(action)}`,
          name,
        );
      }
      if (action !== "start" && (v.host !== undefined || v.port !== undefined)) {
        throw new UsageError("--host and --port only apply to hub start", name);
      }
      if (typeof v.host === "string" && v.host.trim() === "") throw new UsageError("--host is empty", name);
      const port = optionalInt(v.port, "--port", name, 0);
      if (port !== undefined && port > 65535) throw new UsageError("--port must be 0-65535", name);
      return {
        kind: "hub",
        common: { ...common, net: true },
        action,
        ...(typeof v.host === "string" && { host: v.host }),
        ...(port !== undefined && { port }),
      };
    }
  }
}

function commonOptions(v: Record<string, string | boolean | undefined>, name: CommandName): CommonOptions {
  const str = (key: string) => (typeof v[key] === "string" ? (v[key] as string) : undefined);
  const url = str("url");
  if (url !== undefined) checkedUrl(url, "--url", name);
  const token = str("auth-token");
  if (token !== undefined && token.length === 0) throw new UsageError("--auth-token is empty", name);
  const project = str("project");
  const agentName = str("name");
  const purpose = str("purpose");
  if (purpose !== undefined && purpose.length > 500)
    throw new UsageError("--purpose is over 500 characters", name);
  return {
    net: v.net === true || url !== undefined || token !== undefined,
    json: v.json === true,
    ...(project !== undefined && { project: checked(ProjectName, project, "--project", name) }),
    ...(agentName !== undefined && { name: checked(AgentName, agentName, "--name", name) }),
    ...(purpose !== undefined && { purpose }),
    ...(url !== undefined && { url }),
    ...(token !== undefined && { token }),
  };
}

function checkedUrl(url: string, label: string, name: CommandName): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${label} is not a URL: ${JSON.stringify(url)}`, name);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`${label} must be http:// or https://`, name);
  }
  if (parsed.username || parsed.password) {
    throw new UsageError(`${label} must not carry credentials: pass the token with --auth-token`, name);
  }
}

function checked<T>(schema: z.ZodType<T>, value: string, label: string, name: CommandName): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const reason = result.error.issues[0]?.message ?? "invalid";
  throw new UsageError(`${label} ${JSON.stringify(value)}: ${reason}`, name);
}

function optionalInt(raw: unknown, label: string, name: CommandName, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== "string" || !/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`${label} must be an integer >= ${min}, got ${JSON.stringify(raw)}`, name);
  }
  return value;
}

/** Node's messages mention internals ("To specify a positional argument..."); keep the first sentence. */
function cleanParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(/\.\s/)[0]?.replace(/\.$/, "") ?? message;
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([key, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${key}${o.arg ? ` ${o.arg}` : ""}`;
    return [flag, o.help] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`);
}

export const EXIT_CODE_HELP = [
  "Exit codes:",
  "  0 ok   1 other error (hop limit, too large, expired, schema mismatch, ...)",
  "  2 usage   3 unknown peer   4 timeout   5 auth refused",
  "  6 peer gone, unreachable, or it failed to answer (no hub, socket refused, turn failed)",
  "  130 interrupted",
].join("\n");

export function commandHelp(name: CommandName): string {
  const spec = COMMANDS[name];
  const parts = [`Usage: ${spec.usage}`, "", `${capitalise(spec.summary)}.`, spec.details, ""];
  if (Object.keys(spec.options).length > 0) parts.push("Options:", ...optionLines(spec.options), "");
  parts.push("Common options:", ...optionLines(COMMON), "", EXIT_CODE_HELP);
  return `${parts.join("\n")}\n`;
}

export function mainHelp(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const width = Math.max(...names.map((n) => n.length));
  return `${[
    "Usage: pi-coms <command> [options]",
    "",
    "Message pi agents from the shell: P2P over Unix sockets by default, the hub with --net.",
    "",
    "Commands:",
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`),
    "",
    "Common options:",
    ...optionLines(COMMON),
    "",
    EXIT_CODE_HELP,
    "",
    'Run "pi-coms <command> --help" for the options of one command.',
  ].join("\n")}\n`;
}

export function usageLine(name: CommandName | undefined): string {
  return name ? `Usage: ${COMMANDS[name].usage}` : "Usage: pi-coms <command> [options] (pi-coms --help)";
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

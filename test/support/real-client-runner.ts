/**
 * Run the real Claude Code (`claude -p`) and Codex (`codex exec`) CLIs against
 * the scripted model server, each in a scratch HOME with only the MCP servers
 * given here: stdin closed, output captured, and a timeout that only guards
 * against a hang (the whole process group is killed then, MCP servers too).
 *
 *   const run = await runClaude({ clients, modelServer, model: "cc", prompt: "go",
 *     servers: { coms: { command: process.execPath, args: [CLI, "mcp", "--name", "cc"] } },
 *     allowedTools: ["mcp__coms__coms_list"] });
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import type { ModelServer } from "./model-server.ts";
import type { RealClients } from "./real-clients.ts";

/** A stdio server the client starts, or a Streamable HTTP server it reaches by URL. */
export type McpServerSpec =
  | { command: string; args: string[]; env?: Record<string, string> }
  | { url: string; bearerToken?: string };

export interface ClientRunOptions {
  clients: RealClients;
  modelServer: ModelServer;
  /** Model id the client asks for; scripts tell clients apart by it. */
  model: string;
  prompt: string;
  /**
   * The MCP servers, written to the run's own config (Claude: --mcp-config with --strict-mcp-config;
   * Codex: config.toml). Claude without it uses what HOME's config holds (`claude mcp add`).
   */
  servers?: Record<string, McpServerSpec>;
  /** Claude only: the --mcp-config file's text, verbatim, instead of `servers`. */
  mcpConfigJson?: string;
  /** Codex only: TOML appended to the config instead of `servers` (a snippet taken verbatim). */
  extraToml?: string;
  /** HOME of the client, kept after the run; default: a scratch HOME removed afterwards. */
  home?: string;
  /** Working directory of the client (and of the stdio servers it starts). Default: a scratch dir. */
  cwd?: string;
  /** Extra environment for the client process. */
  env?: Record<string, string>;
  /** Hang guard. Default 120 s. */
  timeoutMs?: number;
  /** The client's limit on one MCP tool call (MCP_TOOL_TIMEOUT / tool_timeout_sec). Default 5 minutes; null: the client's own default. */
  toolTimeoutMs?: number | null;
}

export interface ClientRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface ClaudeRun extends ClientRun {
  /** `--output-format json`: the final `result` text, `is_error`, `permission_denials`, ... */
  json:
    | { result?: string; is_error?: boolean; permission_denials?: unknown[]; [key: string]: unknown }
    | undefined;
}

export interface CodexRun extends ClientRun {
  /** The last agent message (`-o FILE`). */
  lastMessage: string;
  /** The `--json` events, one per stdout line. */
  events: Array<{ type: string; item?: Record<string, unknown>; [key: string]: unknown }>;
}

const DEFAULT_TOOL_TIMEOUT_MS = 5 * 60_000;

function scratch(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(root, 0o700);
  return root;
}

function baseEnv(home: string, extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  return {
    PATH: [dirname(process.execPath), process.env.PATH ?? "/usr/bin:/bin"].join(delimiter),
    HOME: home,
    USER: process.env.USER,
    LANG: process.env.LANG ?? "C.UTF-8",
    TMPDIR: process.env.TMPDIR,
    ...extra,
  };
}

function spawnBounded(
  command: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<ClientRun> {
  const env = { ...opts.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const started = Date.now();
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  let timedOut = false;
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, opts.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      // MCP servers the client left behind in its group.
      killGroup();
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started, timedOut });
    });
  });
}

function claudeEnv(opts: Pick<ClientRunOptions, "modelServer" | "toolTimeoutMs" | "env">, home: string) {
  return baseEnv(home, {
    ANTHROPIC_BASE_URL: opts.modelServer.origin,
    ANTHROPIC_API_KEY: "scripted-test-key",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_AUTOUPDATER: "1",
    // MCP tools straight in `tools` instead of behind ToolSearch: one model request less per run.
    ENABLE_TOOL_SEARCH: "false",
    ...(opts.toolTimeoutMs === null
      ? {}
      : { MCP_TOOL_TIMEOUT: String(opts.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS) }),
    ...opts.env,
  });
}

/** Any other `claude` command (e.g. `mcp add ...`) with the environment `runClaude` uses. */
export function runClaudeCommand(
  opts: Pick<ClientRunOptions, "clients" | "modelServer" | "env"> & { home: string; cwd: string },
  args: string[],
): Promise<ClientRun> {
  return spawnBounded(opts.clients.claude, args, {
    cwd: opts.cwd,
    env: claudeEnv(opts, opts.home),
    timeoutMs: 60_000,
  });
}

/** `claude -p` with only `allowedTools` allowed, and `--mcp-config` + `--strict-mcp-config` when given servers. */
export async function runClaude(opts: ClientRunOptions & { allowedTools: string[] }): Promise<ClaudeRun> {
  const root = scratch("claude-run-");
  try {
    const home = opts.home ?? join(root, "home");
    const cwd = opts.cwd ?? join(root, "project");
    for (const dir of [home, cwd]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mcpServers = Object.fromEntries(
      Object.entries(opts.servers ?? {}).map(([name, spec]) => [
        name,
        "url" in spec
          ? {
              type: "http",
              url: spec.url,
              ...(spec.bearerToken ? { headers: { Authorization: `Bearer ${spec.bearerToken}` } } : {}),
            }
          : { command: spec.command, args: spec.args, env: spec.env ?? {} },
      ]),
    );
    const config = join(root, "mcp.json");
    writeFileSync(config, opts.mcpConfigJson ?? JSON.stringify({ mcpServers }), { mode: 0o600 });
    const env = claudeEnv(opts, home);
    const args = [
      "-p",
      opts.prompt,
      "--model",
      opts.model,
      ...(opts.servers || opts.mcpConfigJson ? ["--mcp-config", config, "--strict-mcp-config"] : []),
      "--allowedTools",
      opts.allowedTools.join(","),
      "--output-format",
      "json",
    ];
    const run = await spawnBounded(opts.clients.claude, args, {
      cwd,
      env,
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
    let json: ClaudeRun["json"];
    try {
      json = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "") as ClaudeRun["json"];
    } catch {
      json = undefined;
    }
    return { ...run, json };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const toml = (value: string) => JSON.stringify(value);

/** The `~/.codex/config.toml` for a run: the scripted provider and the MCP servers, tools pre-approved. */
export function codexConfig(
  opts: Pick<ClientRunOptions, "modelServer" | "model" | "servers" | "extraToml" | "toolTimeoutMs">,
): string {
  const lines = [
    `model = ${toml(opts.model)}`,
    `model_provider = "scripted"`,
    "",
    "[model_providers.scripted]",
    `name = "scripted"`,
    `base_url = ${toml(opts.modelServer.baseUrl)}`,
    `env_key = "SCRIPTED_MODEL_KEY"`,
    `wire_api = "responses"`,
  ];
  const toolTimeout =
    opts.toolTimeoutMs === null
      ? []
      : [`tool_timeout_sec = ${Math.ceil((opts.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS) / 1000)}`];
  if (opts.extraToml) lines.push("", opts.extraToml.trim());
  for (const [name, spec] of Object.entries(opts.servers ?? {})) {
    lines.push("", `[mcp_servers.${name}]`);
    if ("url" in spec) {
      lines.push(`url = ${toml(spec.url)}`);
      if (spec.bearerToken) lines.push(`bearer_token_env_var = ${toml(bearerVar(name))}`);
    } else {
      lines.push(`command = ${toml(spec.command)}`, `args = [${spec.args.map(toml).join(", ")}]`);
      const env = Object.entries(spec.env ?? {});
      if (env.length > 0) lines.push(`env = { ${env.map(([k, v]) => `${k} = ${toml(v)}`).join(", ")} }`);
    }
    // Without `required`, codex does not wait for a slow server and its tools miss the first request.
    lines.push("required = true", `default_tools_approval_mode = "approve"`, ...toolTimeout);
  }
  return `${lines.join("\n")}\n`;
}

function bearerVar(server: string): string {
  return `MCP_${server.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_TOKEN`;
}

/** `codex exec --json -o FILE` with the config above. */
export async function runCodex(opts: ClientRunOptions): Promise<CodexRun> {
  const root = scratch("codex-run-");
  try {
    const home = opts.home ?? join(root, "home");
    const cwd = opts.cwd ?? join(root, "project");
    const codexHome = join(home, ".codex");
    for (const dir of [codexHome, cwd]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(codexHome, "config.toml"), codexConfig(opts), { mode: 0o600 });
    const tokens = Object.fromEntries(
      Object.entries(opts.servers ?? {}).flatMap(([name, spec]) =>
        "url" in spec && spec.bearerToken ? [[bearerVar(name), spec.bearerToken]] : [],
      ),
    );
    const env = baseEnv(home, { SCRIPTED_MODEL_KEY: "scripted-test-key", ...tokens, ...opts.env });
    const lastFile = join(root, "last-message.txt");
    const args = [
      opts.clients.codexJs,
      "exec",
      "--skip-git-repo-check",
      "--ephemeral",
      "--json",
      "-o",
      lastFile,
      opts.prompt,
    ];
    const run = await spawnBounded(process.execPath, args, {
      cwd,
      env,
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
    let lastMessage = "";
    try {
      lastMessage = readFileSync(lastFile, "utf8");
    } catch {}
    const events = run.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as CodexRun["events"][number]];
        } catch {
          return [];
        }
      });
    return { ...run, lastMessage, events };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A short account of a run for assertion messages. */
export function describeRun(run: ClientRun): string {
  const tail = (text: string) => text.split("\n").slice(-30).join("\n");
  return `exit ${run.code} signal ${run.signal} after ${run.durationMs} ms${run.timedOut ? " (TIMED OUT)" : ""}\n--- stdout\n${tail(run.stdout)}\n--- stderr\n${tail(run.stderr)}`;
}

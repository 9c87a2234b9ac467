/**
 * Drive a real pi (the pinned dev dependency) in `--mode rpc` from a test.
 *
 * Each process gets a private sandbox: its own HOME, agent dir (models.json and
 * settings.json pointing at the scripted model server), session dir, and
 * PI_COMS_DIR / PI_COMS_NET_DIR unless the caller shares them; no network, no
 * update check, no telemetry. Everything spawned carries a run marker in its
 * environment so `stop()` can also end detached grandchildren (a hub) that a
 * process-group kill misses.
 *
 *   const world = await createPiWorld({ extensions: [PLUGIN] });
 *   const a = await world.startPi({ name: "a" });        // model id "a"
 *   world.modelServer.reply("a", { toolCalls: [{ name: "t", arguments: {} }] }, "done");
 *   const { text } = await a.promptAndWait("go");         // text === "done"
 *   await a.prompt("/cmd args");                          // resolves after the handler ran
 *   await world.close();
 *
 * Pi's own /reload is interactive-only; load test/fixtures/reload-command.ts and send /harness-reload.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import type { RpcCommand, RpcExtensionUIRequest } from "@earendil-works/pi-coding-agent";
import type { ModelServer } from "./model-server.ts";

const REPO_ROOT = resolve(import.meta.dirname, "..", "..");
const PI_PACKAGE_DIR = join(REPO_ROOT, "node_modules", "@earendil-works", "pi-coding-agent");
const PROVIDER = "scripted";
const MARKER_VAR = "PI_HARNESS_RUN";

/** Absolute path of pi's CLI entry (the package's `bin.pi`). */
export function piCliPath(): string {
  const pkg = JSON.parse(readFileSync(join(PI_PACKAGE_DIR, "package.json"), "utf8")) as {
    bin: string | Record<string, string>;
  };
  const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin.pi;
  if (!bin) throw new Error("pi-coding-agent package.json has no bin.pi");
  return join(PI_PACKAGE_DIR, bin);
}

/** Any JSON record pi writes on stdout: a response, a session event or an extension UI request. */
export interface PiRecord {
  type: string;
  [key: string]: unknown;
}

export interface RpcResult extends PiRecord {
  type: "response";
  id?: string;
  command: string;
  success: boolean;
  data?: unknown;
  error?: string;
}

export type DialogRequest = Extract<
  RpcExtensionUIRequest,
  { method: "select" | "confirm" | "input" | "editor" }
>;
export type DialogAnswer = { value: string } | { confirmed: boolean } | { cancelled: true };
/** Return an answer to reply at once, or undefined to leave the dialog pending (answer later with `respondUi`). */
export type DialogHandler = (
  request: DialogRequest,
) => DialogAnswer | undefined | Promise<DialogAnswer | undefined>;

export interface WaitOptions {
  timeoutMs?: number;
  /** Only consider records at or after this index (see `mark()`). Default 0: the whole history. */
  since?: number;
  /** Named in the timeout error. */
  label?: string;
}

export interface StartPiOptions {
  modelServer: ModelServer;
  /** Model id this process asks the server for; scripts tell processes apart by it. Default: `name`, else `pi-<n>`. */
  model?: string;
  /** A label for diagnostics; also the default model id. */
  name?: string;
  /** Working directory (the "project"). Default: a fresh empty dir in the sandbox. */
  cwd?: string;
  /** Extra environment, applied last (e.g. a shared PI_COMS_DIR). The parent's environment is NOT inherited. */
  env?: NodeJS.ProcessEnv;
  /** Extension paths, each passed with `-e`. */
  extensions?: string[];
  /** Extra pi CLI arguments (appended after the harness's own). */
  args?: string[];
  /** Merged over the harness's settings.json. */
  settings?: Record<string, unknown>;
  /** Context window of the scripted model (drives context-usage %). Default 128000. */
  contextWindow?: number;
  /** Persist the session under the sandbox (default true); false passes --no-session. */
  session?: boolean;
  onDialog?: DialogHandler;
  /** Default 30 s. */
  startupTimeoutMs?: number;
  /** Keep the sandbox directory after stop (also when PI_HARNESS_KEEP=1). */
  keepTemp?: boolean;
  /** Shared marker for a group of processes (see createPiWorld); then stop() leaves the sweep to the owner. */
  runMarker?: string;
}

export interface PiSandbox {
  root: string;
  home: string;
  agentDir: string;
  sessionDir: string;
  cwd: string;
  model: string;
  env: NodeJS.ProcessEnv;
  /** pi CLI arguments (without the mode flag). */
  args: string[];
  marker: string;
}

let counter = 0;

/** Create the private dirs and config for one pi process; shared by the RPC driver and the tmux runner. */
export function preparePiSandbox(opts: StartPiOptions): PiSandbox {
  counter += 1;
  const name = opts.name ?? `pi-${counter}`;
  const model = opts.model ?? name;
  const root = mkdtempSync(join(tmpdir(), "pi-harness-"));
  chmodSync(root, 0o700);
  const home = join(root, "home");
  const agentDir = join(home, ".pi", "agent");
  const sessionDir = join(root, "sessions");
  const cwd = opts.cwd ?? join(root, "project");
  for (const dir of [agentDir, sessionDir, cwd]) mkdirSync(dir, { recursive: true, mode: 0o700 });

  writeFileSync(
    join(agentDir, "models.json"),
    JSON.stringify(
      {
        providers: {
          [PROVIDER]: {
            baseUrl: opts.modelServer.baseUrl,
            api: "openai-completions",
            apiKey: "scripted-test-key",
            models: [
              {
                id: model,
                name: `Scripted ${model}`,
                reasoning: false,
                input: ["text"],
                contextWindow: opts.contextWindow ?? 128_000,
                maxTokens: 8192,
                cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
              },
            ],
          },
        },
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  writeFileSync(
    join(agentDir, "settings.json"),
    JSON.stringify(
      {
        defaultProvider: PROVIDER,
        defaultModel: model,
        defaultThinkingLevel: "off",
        defaultProjectTrust: "always",
        quietStartup: true,
        enableInstallTelemetry: false,
        retry: { enabled: false },
        compaction: { enabled: false },
        ...opts.settings,
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );

  const marker = opts.runMarker ?? randomUUID();
  const binDirs = [join(REPO_ROOT, "node_modules", ".bin"), dirname(process.execPath)];
  const env: NodeJS.ProcessEnv = {
    PATH: [...binDirs, process.env.PATH ?? "/usr/bin:/bin"].join(delimiter),
    HOME: home,
    USER: process.env.USER,
    LANG: process.env.LANG ?? "C.UTF-8",
    TMPDIR: process.env.TMPDIR,
    TERM: "xterm-256color",
    PI_CODING_AGENT_DIR: agentDir,
    PI_OFFLINE: "1",
    PI_SKIP_VERSION_CHECK: "1",
    PI_TELEMETRY: "0",
    PI_COMS_DIR: join(home, ".pi", "coms"),
    PI_COMS_NET_DIR: join(home, ".pi", "coms-net"),
    [MARKER_VAR]: marker,
    ...opts.env,
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];

  const args = [
    "--provider",
    PROVIDER,
    "--model",
    model,
    ...(opts.session === false ? ["--no-session"] : ["--session-dir", sessionDir]),
    ...(opts.extensions ?? []).flatMap((path) => ["-e", resolve(path)]),
    ...(opts.args ?? []),
  ];
  return { root, home, agentDir, sessionDir, cwd, model, env, args, marker };
}

/** Pids (other than ours) whose environment carries `marker`. Linux /proc only; elsewhere none. */
export function pidsWithMarker(marker: string): number[] {
  const needle = `${MARKER_VAR}=${marker}`;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").split("\0").includes(needle)) found.push(pid);
    } catch {
      // gone already, or not ours
    }
  }
  return found;
}

/** True while the process exists and is not a zombie waiting for a reaper. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may contain spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `promise` settles within `ms`; the timer is cleared so it never keeps a finished test alive. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** End every process carrying the marker: TERM, a bounded wait, then KILL. */
export async function sweepMarker(marker: string, graceMs = 2000): Promise<number[]> {
  const pids = pidsWithMarker(marker);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {}
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(processAlive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(processAlive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  return pids;
}

// Last line of defence when a test file dies without calling stop(): kill and clean synchronously.
const liveCleanups = new Set<() => void>();
process.once("exit", () => {
  for (const cleanup of liveCleanups) {
    try {
      cleanup();
    } catch {}
  }
});

function tail(text: string, lines: number): string {
  return text.split("\n").slice(-lines).join("\n");
}

function describeRecord(record: PiRecord): string {
  const extra =
    record.type === "response"
      ? ` ${String(record.command)} ${record.success ? "ok" : `FAILED ${String(record.error)}`}`
      : record.type === "extension_ui_request"
        ? ` ${String(record.method)} ${JSON.stringify(record.widgetLines ?? record.message ?? record.statusText ?? record.title ?? "")}`
        : record.type.startsWith("tool_execution")
          ? ` ${String(record.toolName)}`
          : "";
  return `${record.type}${extra}`.slice(0, 200);
}

type Waiter = {
  predicate: (record: PiRecord) => boolean;
  since: number;
  resolve: (record: PiRecord) => void;
  reject: (error: Error) => void;
};

/** A running `pi --mode rpc` process. */
export class PiProcess {
  readonly name: string;
  readonly model: string;
  readonly sandbox: PiSandbox;
  readonly cwd: string;
  /** Every stdout record in arrival order (message_update deltas included). */
  readonly records: PiRecord[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private stderrText = "";
  private stdoutBuffer = "";
  private nextId = 0;
  private readonly pendingResponses = new Map<
    string,
    { resolve: (r: RpcResult) => void; reject: (e: Error) => void }
  >();
  private readonly waiters = new Set<Waiter>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private dialogHandler: DialogHandler | undefined;
  private stopping: Promise<void> | undefined;
  private readonly ownsMarker: boolean;
  private readonly keepTemp: boolean;
  private readonly cleanupOnExit: () => void;

  constructor(opts: StartPiOptions, sandbox: PiSandbox) {
    this.sandbox = sandbox;
    this.name = opts.name ?? sandbox.model;
    this.model = sandbox.model;
    this.cwd = sandbox.cwd;
    this.dialogHandler = opts.onDialog;
    this.ownsMarker = opts.runMarker === undefined;
    this.keepTemp = opts.keepTemp === true || process.env.PI_HARNESS_KEEP === "1";
    this.child = spawn(process.execPath, [piCliPath(), "--mode", "rpc", ...sandbox.args], {
      cwd: sandbox.cwd,
      env: sandbox.env,
      stdio: ["pipe", "pipe", "pipe"],
      // Own process group, so stop() can signal the whole tree.
      detached: true,
    });
    this.child.stdin?.on("error", () => {});
    this.child.stdout?.setEncoding("utf8");
    this.child.stdout?.on("data", (chunk: string) => this.onStdout(chunk));
    this.child.stderr?.setEncoding("utf8");
    this.child.stderr?.on("data", (chunk: string) => {
      this.stderrText += chunk;
      if (this.stderrText.length > 200_000) this.stderrText = this.stderrText.slice(-100_000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        const error = new Error(
          `pi "${this.name}" exited (code ${code}, signal ${signal})\n${this.diagnostics()}`,
        );
        for (const pending of this.pendingResponses.values()) pending.reject(error);
        this.pendingResponses.clear();
        for (const waiter of this.waiters) waiter.reject(error);
        this.waiters.clear();
        resolve({ code, signal });
      });
    });
    const pid = this.child.pid;
    this.cleanupOnExit = () => {
      if (pid !== undefined && this.exitInfo === undefined) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {}
      }
      if (this.ownsMarker) {
        for (const p of pidsWithMarker(sandbox.marker)) {
          try {
            process.kill(p, "SIGKILL");
          } catch {}
        }
      }
      if (!this.keepTemp) rmSync(sandbox.root, { recursive: true, force: true });
    };
    liveCleanups.add(this.cleanupOnExit);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stderr(): string {
    return this.stderrText;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Index of the next record; pass as `since` to wait only for what happens after this point. */
  mark(): number {
    return this.records.length;
  }

  private onStdout(chunk: string): void {
    this.stdoutBuffer += chunk;
    let newline = this.stdoutBuffer.indexOf("\n");
    while (newline >= 0) {
      let line = this.stdoutBuffer.slice(0, newline);
      this.stdoutBuffer = this.stdoutBuffer.slice(newline + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line.trim() !== "") this.onLine(line);
      newline = this.stdoutBuffer.indexOf("\n");
    }
  }

  private onLine(line: string): void {
    let record: PiRecord;
    try {
      record = JSON.parse(line) as PiRecord;
    } catch {
      this.stderrText += `[harness] non-JSON stdout line: ${line}\n`;
      return;
    }
    const index = this.records.length;
    this.records.push(record);
    if (record.type === "response" && typeof record.id === "string") {
      const pending = this.pendingResponses.get(record.id);
      if (pending) {
        this.pendingResponses.delete(record.id);
        pending.resolve(record as RpcResult);
      }
    }
    if (record.type === "extension_ui_request") this.onUiRequest(record);
    for (const waiter of [...this.waiters]) {
      if (index >= waiter.since && waiter.predicate(record)) {
        this.waiters.delete(waiter);
        waiter.resolve(record);
      }
    }
  }

  private onUiRequest(record: PiRecord): void {
    const method = record.method;
    if (method !== "select" && method !== "confirm" && method !== "input" && method !== "editor") return;
    const handler = this.dialogHandler;
    if (!handler) return;
    Promise.resolve(handler(record as unknown as DialogRequest))
      .then((answer) => {
        if (answer) this.respondUi(String(record.id), answer);
      })
      .catch((error) => {
        this.stderrText += `[harness] dialog handler threw: ${String(error)}\n`;
      });
  }

  /** Set (or clear) the function that answers select/confirm/input/editor dialogs. */
  onDialog(handler: DialogHandler | undefined): void {
    this.dialogHandler = handler;
  }

  /** Answer an extension dialog by its request id. */
  respondUi(id: string, answer: DialogAnswer): void {
    this.write({ type: "extension_ui_response", id, ...answer });
  }

  private write(record: Record<string, unknown>): void {
    if (!this.running) throw new Error(`pi "${this.name}" is not running\n${this.diagnostics()}`);
    this.child.stdin?.write(`${JSON.stringify(record)}\n`);
  }

  /** Send one RPC command and resolve with its response (also when success is false). */
  send(command: RpcCommand, opts: { timeoutMs?: number } = {}): Promise<RpcResult> {
    const id = command.id ?? `h${++this.nextId}`;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return new Promise<RpcResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingResponses.delete(id);
        reject(
          new Error(
            `pi "${this.name}": no response to ${command.type} within ${timeoutMs} ms\n${this.diagnostics()}`,
          ),
        );
      }, timeoutMs);
      this.pendingResponses.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      try {
        this.write({ ...command, id });
      } catch (error) {
        clearTimeout(timer);
        this.pendingResponses.delete(id);
        reject(error);
      }
    });
  }

  /** Like send, but throws unless success is true; returns the response data. */
  async request<T = unknown>(command: RpcCommand, opts: { timeoutMs?: number } = {}): Promise<T> {
    const response = await this.send(command, opts);
    if (!response.success) {
      throw new Error(`pi "${this.name}": ${command.type} failed: ${response.error}\n${this.diagnostics()}`);
    }
    return response.data as T;
  }

  /**
   * Send a prompt (plain text or a `/command`). For an extension command the response comes after its
   * handler finished, so `await pi.prompt("/coms start")` means the command ran.
   */
  async prompt(
    message: string,
    opts: { streamingBehavior?: "steer" | "followUp"; timeoutMs?: number } = {},
  ): Promise<RpcResult> {
    const response = await this.send(
      { type: "prompt", message, streamingBehavior: opts.streamingBehavior },
      opts,
    );
    if (!response.success) {
      throw new Error(
        `pi "${this.name}": prompt ${JSON.stringify(message)} rejected: ${response.error}\n${this.diagnostics()}`,
      );
    }
    return response;
  }

  /**
   * Prompt and wait until pi settles (no more automatic work). Returns the records of that run and the
   * text of its last assistant message.
   */
  async promptAndWait(
    message: string,
    opts: { timeoutMs?: number; streamingBehavior?: "steer" | "followUp" } = {},
  ): Promise<{ records: PiRecord[]; text: string }> {
    const since = this.mark();
    const settled = this.waitFor((r) => r.type === "agent_settled", {
      since,
      timeoutMs: opts.timeoutMs ?? 30_000,
      label: `agent_settled after ${JSON.stringify(message)}`,
    });
    try {
      await this.prompt(message, opts);
    } catch (error) {
      settled.catch(() => {});
      throw error;
    }
    await settled;
    const records = this.records.slice(since);
    return { records, text: lastAssistantText(records) };
  }

  /** Send `abort` (pi answers once the session is idle). */
  async abort(opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.request({ type: "abort" }, opts);
  }

  /**
   * Resolve with the first record (at or after `since`) matching `predicate`, waking on each new record;
   * rejects after `timeoutMs` (default 15 s) or when pi exits, with pi's stderr and recent records.
   */
  waitFor(predicate: (record: PiRecord) => boolean, opts: WaitOptions = {}): Promise<PiRecord> {
    const since = opts.since ?? 0;
    for (let i = since; i < this.records.length; i++) {
      const record = this.records[i];
      if (record && predicate(record)) return Promise.resolve(record);
    }
    if (!this.running) {
      return Promise.reject(new Error(`pi "${this.name}" already exited\n${this.diagnostics()}`));
    }
    const timeoutMs = opts.timeoutMs ?? 15_000;
    return new Promise<PiRecord>((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        since,
        resolve: (record) => {
          clearTimeout(timer);
          resolve(record);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `pi "${this.name}": ${opts.label ?? "waitFor"} not seen within ${timeoutMs} ms (since record ${since})\n${this.diagnostics()}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Wait for the session to settle (`agent_settled`) at or after `since`. */
  waitForSettled(opts: WaitOptions = {}): Promise<PiRecord> {
    return this.waitFor((r) => r.type === "agent_settled", { label: "agent_settled", ...opts });
  }

  /**
   * Resolve once no agent run is active: the newest `agent_start` (if any) has an `agent_settled` after
   * it. For the end of a subtest that made this session work (e.g. answer a peer), so that the tail of
   * that turn cannot meet the next subtest's prompt ("Agent is already processing").
   */
  idle(opts: WaitOptions = {}): Promise<PiRecord | undefined> {
    const start = this.records.findLastIndex((r) => r.type === "agent_start");
    if (start < 0) return Promise.resolve(undefined);
    return this.waitForSettled({
      label: "agent_settled after the newest agent_start",
      ...opts,
      since: start,
    });
  }

  /** Wait for a finished tool execution, optionally of one tool. */
  waitForToolEnd(toolName?: string, opts: WaitOptions = {}): Promise<PiRecord> {
    return this.waitFor(
      (r) => r.type === "tool_execution_end" && (toolName === undefined || r.toolName === toolName),
      {
        label: `tool_execution_end ${toolName ?? ""}`,
        ...opts,
      },
    );
  }

  /** Wait until the latest lines of widget `key` satisfy `predicate` (checked on every setWidget). */
  async waitForWidget(
    key: string,
    predicate: (lines: string[]) => boolean,
    opts: WaitOptions = {},
  ): Promise<string[]> {
    const record = await this.waitFor(
      (r) =>
        r.type === "extension_ui_request" &&
        r.method === "setWidget" &&
        r.widgetKey === key &&
        Array.isArray(r.widgetLines) &&
        predicate(r.widgetLines as string[]),
      { label: `widget ${key}`, ...opts, since: opts.since ?? this.lastWidgetIndex(key) },
    );
    return record.widgetLines as string[];
  }

  private lastWidgetIndex(key: string): number {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i];
      if (r?.type === "extension_ui_request" && r.method === "setWidget" && r.widgetKey === key) return i;
    }
    return 0;
  }

  /** `extension_ui_request` records so far (setWidget, setStatus, notify, dialogs...), optionally one method. */
  collectExtensionUi(method?: string, opts: { since?: number } = {}): RpcExtensionUIRequest[] {
    return this.records
      .slice(opts.since ?? 0)
      .filter(
        (r) => r.type === "extension_ui_request" && (method === undefined || r.method === method),
      ) as unknown as RpcExtensionUIRequest[];
  }

  /** Current lines of a widget (undefined when never set or cleared). */
  widget(key: string): string[] | undefined {
    const index = this.lastWidgetIndex(key);
    const r = this.records[index];
    if (r?.type !== "extension_ui_request" || r.method !== "setWidget" || r.widgetKey !== key)
      return undefined;
    return Array.isArray(r.widgetLines) ? (r.widgetLines as string[]) : undefined;
  }

  /** Current text of a status entry (undefined when never set or cleared). */
  status(key: string): string | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i];
      if (r?.type === "extension_ui_request" && r.method === "setStatus" && r.statusKey === key) {
        return typeof r.statusText === "string" ? r.statusText : undefined;
      }
    }
    return undefined;
  }

  /** Messages passed to ctx.ui.notify, oldest first. */
  notifications(opts: { since?: number } = {}): Array<{ message: string; notifyType: string }> {
    return this.collectExtensionUi("notify", opts).map((r) => {
      const n = r as unknown as { message: string; notifyType?: string };
      return { message: n.message, notifyType: n.notifyType ?? "info" };
    });
  }

  /** Run a slash command and return what it notified, one "type: message" line each. */
  async notifiedBy(command: string, timeoutMs = 40_000): Promise<string> {
    const since = this.mark();
    await this.prompt(command, { timeoutMs });
    return this.notifications({ since })
      .map((n) => `${n.notifyType}: ${n.message}`)
      .join("\n");
  }

  /** Finished tool executions so far: name, args, result text, isError. */
  toolResults(opts: { since?: number; toolName?: string } = {}): Array<{
    toolName: string;
    args: unknown;
    text: string;
    details: unknown;
    isError: boolean;
  }> {
    const starts = new Map<string, unknown>();
    const out: Array<{ toolName: string; args: unknown; text: string; details: unknown; isError: boolean }> =
      [];
    for (const r of this.records.slice(opts.since ?? 0)) {
      if (r.type === "tool_execution_start") starts.set(String(r.toolCallId), r.args);
      if (r.type !== "tool_execution_end") continue;
      if (opts.toolName !== undefined && r.toolName !== opts.toolName) continue;
      const result = r.result as
        | { content?: Array<{ type: string; text?: string }>; details?: unknown }
        | undefined;
      out.push({
        toolName: String(r.toolName),
        args: starts.get(String(r.toolCallId)),
        text: (result?.content ?? []).map((c) => c.text ?? "").join(""),
        details: result?.details,
        isError: r.isError === true,
      });
    }
    return out;
  }

  /** Text of the last assistant message in the records (from `since`). */
  lastAssistantText(opts: { since?: number } = {}): string {
    return lastAssistantText(this.records.slice(opts.since ?? 0));
  }

  /** Stderr tail and the last records, for failure messages. */
  diagnostics(opts: { records?: number; stderrLines?: number } = {}): string {
    const recent = this.records.slice(-(opts.records ?? 25)).map(describeRecord);
    const status = this.exitInfo
      ? `exited code=${this.exitInfo.code} signal=${this.exitInfo.signal}`
      : "running";
    return [
      `--- pi "${this.name}" (model ${this.model}, pid ${this.pid}, ${status}, ${this.records.length} records)`,
      `--- last records:`,
      ...recent.map((line) => `  ${line}`),
      `--- stderr tail:`,
      tail(this.stderrText, opts.stderrLines ?? 40),
      `---`,
    ].join("\n");
  }

  /**
   * End the process and clean up, safe to call twice and after a crash: close stdin (pi shuts down
   * orderly, extensions get session_shutdown), then SIGTERM and SIGKILL to the process group after
   * bounded waits, then every process carrying this run's marker, then the sandbox dir.
   */
  stop(opts: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.doStop(opts.graceMs ?? 5000);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<void> {
    const pid = this.child.pid;
    const waitExit = (ms: number) => within(this.exited, ms);
    if (this.running) {
      this.child.stdin?.end();
      if (!(await waitExit(graceMs)) && pid !== undefined) {
        try {
          process.kill(-pid, "SIGTERM");
        } catch {}
        if (!(await waitExit(2000))) {
          try {
            process.kill(-pid, "SIGKILL");
          } catch {}
          await waitExit(2000);
        }
      }
    }
    // Children left in the group (tool subprocesses) after pi itself exited.
    if (pid !== undefined) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {}
    }
    if (this.ownsMarker) await sweepMarker(this.sandbox.marker);
    liveCleanups.delete(this.cleanupOnExit);
    if (!this.keepTemp) rmSync(this.sandbox.root, { recursive: true, force: true });
  }
}

export function lastAssistantText(records: PiRecord[]): string {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i];
    const message =
      r?.type === "message_end" ? (r.message as { role?: string; content?: unknown }) : undefined;
    if (message?.role !== "assistant") continue;
    const content = message.content;
    if (typeof content === "string") return content;
    if (Array.isArray(content)) {
      return content
        .filter((c: { type?: string }) => c.type === "text")
        .map((c: { text?: string }) => c.text ?? "")
        .join("");
    }
  }
  return "";
}

/** Spawn `pi --mode rpc` in a fresh sandbox and resolve once it answers a `get_state`. */
export async function startPi(opts: StartPiOptions): Promise<PiProcess> {
  const sandbox = preparePiSandbox(opts);
  const pi = new PiProcess(opts, sandbox);
  try {
    const state = await pi.request<{ model?: { id?: string } }>(
      { type: "get_state" },
      { timeoutMs: opts.startupTimeoutMs ?? 30_000 },
    );
    if (state.model?.id !== sandbox.model) {
      throw new Error(
        `pi "${pi.name}" selected model ${state.model?.id}, expected ${sandbox.model}\n${pi.diagnostics()}`,
      );
    }
  } catch (error) {
    await pi.stop({ graceMs: 500 });
    throw error;
  }
  return pi;
}

/** Print diagnostics of the given processes when the test that just ran failed. Use in `afterEach`. */
export function dumpIfFailed(
  t: { name: string; passed?: boolean },
  ...pis: Array<PiProcess | undefined>
): void {
  if (t.passed !== false) return;
  for (const pi of pis)
    if (pi) process.stderr.write(`\n[harness] test "${t.name}" failed; ${pi.diagnostics()}\n`);
}

export interface PiWorldOptions {
  /** Model server to use; default: the world starts (and closes) its own. */
  modelServer?: ModelServer;
  /** Applied to every process started in the world. */
  env?: NodeJS.ProcessEnv;
  extensions?: string[];
}

/**
 * Several pi processes that can find each other: one project dir (same cwd, so the same derived
 * project), one PI_COMS_DIR and PI_COMS_NET_DIR, one model server, one run marker. `close()` stops
 * them all, then sweeps anything they left running (e.g. an auto-started hub).
 */
export interface PiWorld {
  readonly root: string;
  readonly project: string;
  readonly comsDir: string;
  readonly comsNetDir: string;
  readonly modelServer: ModelServer;
  readonly env: NodeJS.ProcessEnv;
  readonly pis: PiProcess[];
  /** Run marker shared by everything started in this world. */
  readonly marker: string;
  /** Options that put another runner (e.g. `startPiInTmux`) into this world. */
  piOptions(): Pick<StartPiOptions, "modelServer" | "cwd" | "env" | "runMarker" | "extensions">;
  /** Run `cleanup` at `close()`, before the final sweep. */
  defer(cleanup: () => unknown): void;
  startPi(
    opts: Omit<StartPiOptions, "modelServer" | "runMarker"> & { modelServer?: ModelServer },
  ): Promise<PiProcess>;
  close(): Promise<void>;
}

export async function createPiWorld(opts: PiWorldOptions = {}): Promise<PiWorld> {
  const { startModelServer } = await import("./model-server.ts");
  const modelServer = opts.modelServer ?? (await startModelServer());
  const ownsServer = opts.modelServer === undefined;
  const root = mkdtempSync(join(tmpdir(), "pi-world-"));
  chmodSync(root, 0o700);
  const project = join(root, "project");
  const comsDir = join(root, "coms");
  const comsNetDir = join(root, "coms-net");
  for (const dir of [project, comsDir, comsNetDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const marker = randomUUID();
  const env = { PI_COMS_DIR: comsDir, PI_COMS_NET_DIR: comsNetDir, ...opts.env };
  const pis: PiProcess[] = [];
  const deferred: Array<() => unknown> = [];
  const cleanup = () => {
    for (const pid of pidsWithMarker(marker)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    rmSync(root, { recursive: true, force: true });
  };
  liveCleanups.add(cleanup);
  let closing: Promise<void> | undefined;
  return {
    root,
    project,
    comsDir,
    comsNetDir,
    modelServer,
    env,
    pis,
    marker,
    piOptions() {
      return {
        modelServer,
        cwd: project,
        env: { ...env },
        runMarker: marker,
        extensions: [...(opts.extensions ?? [])],
      };
    },
    defer(fn) {
      deferred.push(fn);
    },
    async startPi(piOpts) {
      const pi = await startPi({
        cwd: project,
        ...piOpts,
        modelServer: piOpts.modelServer ?? modelServer,
        env: { ...env, ...piOpts.env },
        extensions: [...(opts.extensions ?? []), ...(piOpts.extensions ?? [])],
        runMarker: marker,
      });
      pis.push(pi);
      return pi;
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...pis.map((pi) => pi.stop()), ...deferred.map(async (fn) => fn())]);
        await sweepMarker(marker);
        liveCleanups.delete(cleanup);
        if (process.env.PI_HARNESS_KEEP !== "1") rmSync(root, { recursive: true, force: true });
        if (ownsServer) await modelServer.close();
      })();
      return closing;
    },
  };
}

/**
 * Run a program (normally interactive pi) in a detached tmux session of a
 * fixed size, type into it and read the screen. Each session has its own tmux
 * server socket and no user config, so tests never touch a real tmux.
 */
import { execFile, execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  type PiSandbox,
  type PiWorld,
  piCliPath,
  preparePiSandbox,
  type StartPiOptions,
  sweepMarker,
} from "./pi-harness.ts";

const run = promisify(execFile);

/** undefined when tmux is usable, else why not. A test fails on it, never skips: `npm test` installs tmux. */
export function tmuxMissing(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    execFileSync("tmux", ["-V"], { stdio: "pipe", env });
    return undefined;
  } catch {
    return "tmux is not installed: npm test installs it (scripts/test-deps.mjs), or run `apt-get install tmux`";
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export interface TmuxOptions {
  /** Program and arguments, run directly (no shell expansion). */
  command: string[];
  cwd: string;
  /** The complete environment of the program (the tmux server is started with it). */
  env: NodeJS.ProcessEnv;
  /** Where the socket and launcher live; must exist. */
  dir: string;
  cols?: number;
  rows?: number;
}

export class TmuxSession {
  readonly target = "main";
  private readonly opts: TmuxOptions;
  private readonly socket: string;
  private killed = false;

  constructor(opts: TmuxOptions, socket: string) {
    this.opts = opts;
    this.socket = socket;
  }

  private tmux(args: string[]): Promise<{ stdout: string }> {
    return run("tmux", ["-S", this.socket, ...args], { env: this.opts.env, encoding: "utf8" });
  }

  /** Send tmux key names, e.g. sendKeys("Enter"), sendKeys("C-c"), sendKeys("Escape"). */
  async sendKeys(...keys: string[]): Promise<void> {
    await this.tmux(["send-keys", "-t", this.target, ...keys]);
  }

  /** Type literal text (no key-name interpretation). */
  async type(text: string): Promise<void> {
    await this.tmux(["send-keys", "-t", this.target, "-l", text]);
  }

  /** The visible screen as plain text. */
  async capturePane(): Promise<string> {
    const { stdout } = await this.tmux(["capture-pane", "-p", "-t", this.target]);
    return stdout;
  }

  /** Poll the screen until `pattern` matches; throws with the last screen after `timeoutMs` (default 15 s). */
  async waitForScreen(
    pattern: RegExp,
    opts: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<string> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    let screen = "";
    for (;;) {
      screen = await this.capturePane().catch((error: unknown) => `[capture failed: ${String(error)}]`);
      if (pattern.test(screen)) return screen;
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
    }
    throw new Error(
      `screen did not match ${pattern} within ${opts.timeoutMs ?? 15_000} ms; last screen:\n${screen}`,
    );
  }

  /** Kill the tmux server (and with it the program); idempotent. */
  async kill(): Promise<void> {
    if (this.killed) return;
    this.killed = true;
    await this.tmux(["kill-server"]).catch(() => {});
  }
}

/** Start `opts.command` in a new detached session; the pane stays open after the program exits so its last words can be read. */
export async function startTmux(opts: TmuxOptions): Promise<TmuxSession> {
  const missing = tmuxMissing(opts.env);
  if (missing) throw new Error(missing);
  const socket = join(opts.dir, "tmux.sock");
  const launcher = join(opts.dir, "launch.sh");
  const config = join(opts.dir, "tmux.conf");
  // No status bar (the pane gets every row), prompt Escape, and the key protocol pi asks for.
  writeFileSync(config, "set -g status off\nset -g escape-time 0\nset -g extended-keys on\n", {
    mode: 0o600,
  });
  writeFileSync(
    launcher,
    `${opts.command.map(shellQuote).join(" ")}\necho "[exited with status $?]"\nexec sleep 86400\n`,
    { mode: 0o700 },
  );
  const session = new TmuxSession(opts, socket);
  await run(
    "tmux",
    [
      "-S",
      socket,
      "-f",
      config,
      "new-session",
      "-d",
      "-s",
      session.target,
      "-x",
      String(opts.cols ?? 120),
      "-y",
      String(opts.rows ?? 40),
      "-c",
      opts.cwd,
      `sh ${shellQuote(launcher)}`,
    ],
    { env: opts.env, encoding: "utf8" },
  );
  return session;
}

/** Interactive pi inside tmux, in the same kind of sandbox as `startPi`. */
export interface TmuxPi {
  readonly tmux: TmuxSession;
  readonly sandbox: PiSandbox;
  sendKeys(...keys: string[]): Promise<void>;
  type(text: string): Promise<void>;
  /** Type a line and press Enter. */
  submit(line: string): Promise<void>;
  capturePane(): Promise<string>;
  waitForScreen(pattern: RegExp, opts?: { timeoutMs?: number }): Promise<string>;
  /** Kill tmux and pi, sweep leftovers, remove the sandbox; idempotent. */
  kill(): Promise<void>;
}

export interface StartPiInTmuxOptions extends Omit<StartPiOptions, "onDialog" | "modelServer"> {
  /** Required unless `world` is given. */
  modelServer?: StartPiOptions["modelServer"];
  /** Join a world: its project dir, coms dirs, model server, extensions and marker; killed by `world.close()`. */
  world?: PiWorld;
  cols?: number;
  rows?: number;
}

/** Start interactive pi in tmux. Wait for something your extension draws before typing (`waitForScreen`). */
export async function startPiInTmux(options: StartPiInTmuxOptions): Promise<TmuxPi> {
  const base = options.world?.piOptions();
  const modelServer = options.modelServer ?? base?.modelServer;
  if (!modelServer) throw new Error("startPiInTmux needs modelServer or world");
  const opts: StartPiOptions & { cols?: number; rows?: number } = {
    ...base,
    ...options,
    modelServer,
    env: { ...base?.env, ...options.env },
    extensions: [...(base?.extensions ?? []), ...(options.extensions ?? [])],
  };
  const sandbox = preparePiSandbox(opts);
  let tmux: TmuxSession;
  try {
    tmux = await startTmux({
      command: [process.execPath, piCliPath(), ...sandbox.args],
      cwd: sandbox.cwd,
      env: sandbox.env,
      dir: sandbox.root,
      cols: opts.cols,
      rows: opts.rows,
    });
  } catch (error) {
    rmSync(sandbox.root, { recursive: true, force: true });
    throw error;
  }
  let killing: Promise<void> | undefined;
  const tui: TmuxPi = {
    tmux,
    sandbox,
    sendKeys: (...keys) => tmux.sendKeys(...keys),
    type: (text) => tmux.type(text),
    async submit(line) {
      await tmux.type(line);
      await tmux.sendKeys("Enter");
    },
    capturePane: () => tmux.capturePane(),
    waitForScreen: (pattern, o) => tmux.waitForScreen(pattern, o),
    kill() {
      killing ??= (async () => {
        await tmux.kill();
        if (opts.runMarker === undefined) await sweepMarker(sandbox.marker);
        if (opts.keepTemp !== true && process.env.PI_HARNESS_KEEP !== "1") {
          rmSync(sandbox.root, { recursive: true, force: true });
        }
      })();
      return killing;
    },
  };
  options.world?.defer(() => tui.kill());
  return tui;
}

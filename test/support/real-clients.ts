/**
 * The real Claude Code and Codex CLIs, pinned in test/clients (its own
 * package.json and lockfile, about 790 MB, never a dependency of pi-coms).
 * `realClients()` installs them with `npm ci` the first time a test needs
 * them; a lock directory makes concurrent test files wait for one install
 * instead of racing two. Install scripts are not run: the native binaries
 * are taken straight from the platform packages.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const CLIENTS_DIR = resolve(import.meta.dirname, "..", "clients");
const MODULES = join(CLIENTS_DIR, "node_modules");
const LOCK_DIR = join(CLIENTS_DIR, ".install-lock");
/** Written after a complete install: the hash of the lockfile it installed (npm ci removes it first). */
const STAMP = join(MODULES, ".pi-coms-installed");
/** A bound that only guards against a hung npm; a cold install takes about 70 s. */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

export interface RealClients {
  /** The native Claude Code binary. */
  claude: string;
  /** Codex's npm entry (`bin/codex.js`), run with this Node; it starts the native binary. */
  codexJs: string;
  versions: { claude: string; codex: string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pins(): { claude: string; codex: string } {
  const pkg = JSON.parse(readFileSync(join(CLIENTS_DIR, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  const claude = pkg.dependencies["@anthropic-ai/claude-code"];
  const codex = pkg.dependencies["@openai/codex"];
  if (!claude || !codex) throw new Error(`${CLIENTS_DIR}/package.json must pin both clients`);
  return { claude, codex };
}

function installedVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(MODULES, name, "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return undefined;
  }
}

/** The platform package holding Claude Code's native binary (what its postinstall would copy). */
function claudeBinary(): string | undefined {
  if (process.platform === "win32") return undefined;
  const base = `claude-code-${process.platform}-${process.arch}`;
  for (const dir of [base, `${base}-musl`]) {
    const file = join(MODULES, "@anthropic-ai", dir, "claude");
    if (existsSync(file)) return file;
  }
  return undefined;
}

function lockHash(): string {
  return createHash("sha256")
    .update(readFileSync(join(CLIENTS_DIR, "package-lock.json")))
    .digest("hex");
}

function stampMatches(): boolean {
  try {
    return readFileSync(STAMP, "utf8") === lockHash();
  } catch {
    return false;
  }
}

function locate(): RealClients | undefined {
  if (!stampMatches()) return undefined;
  const want = pins();
  const versions = {
    claude: installedVersion("@anthropic-ai/claude-code") ?? "",
    codex: installedVersion("@openai/codex") ?? "",
  };
  if (versions.claude !== want.claude || versions.codex !== want.codex) return undefined;
  const claude = claudeBinary();
  const codexJs = join(MODULES, "@openai", "codex", "bin", "codex.js");
  if (!claude || !existsSync(codexJs)) return undefined;
  return { claude, codexJs, versions };
}

function npmCommand(): { command: string; args: string[] } {
  // Under `npm test`, npm names its own CLI; run that one with this Node.
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.[cm]?js$/.test(execPath)) return { command: process.execPath, args: [execPath] };
  return { command: process.platform === "win32" ? "npm.cmd" : "npm", args: [] };
}

/**
 * This environment without what a parent `npm test` exports (`npm_config_local_prefix` and the like
 * would point the install at the project root); NPM_CONFIG_* set by a user or CI stay.
 */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("npm_")));
}

function runNpmCi(): Promise<void> {
  const { command, args } = npmCommand();
  const child = spawn(
    command,
    [...args, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
    {
      cwd: CLIENTS_DIR,
      stdio: ["ignore", "pipe", "pipe"],
      env: npmEnv(),
    },
  );
  let output = "";
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), INSTALL_TIMEOUT_MS);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`npm ci in ${CLIENTS_DIR} failed (code ${code}, signal ${signal}):\n${output}`));
    });
  });
}

function lockHolderAlive(): boolean {
  try {
    const pid = Number(readFileSync(join(LOCK_DIR, "pid"), "utf8"));
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // No pid file yet: the holder is between mkdir and write; count it alive while the dir is fresh.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      try {
        return Date.now() - statSync(LOCK_DIR).mtimeMs < 10_000;
      } catch {
        return false;
      }
    }
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

let installing: Promise<RealClients> | undefined;

async function installOnce(): Promise<RealClients> {
  const deadline = Date.now() + INSTALL_TIMEOUT_MS;
  for (;;) {
    const found = locate();
    if (found) return found;
    let mine = false;
    try {
      mkdirSync(LOCK_DIR);
      mine = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (mine) {
      try {
        writeFileSync(join(LOCK_DIR, "pid"), String(process.pid));
        // Another process may have finished between our check and the lock.
        const ready = locate();
        if (ready) return ready;
        process.stderr.write(`[real-clients] installing the pinned MCP clients into ${MODULES} (npm ci)\n`);
        await runNpmCi();
        writeFileSync(STAMP, lockHash());
        const installed = locate();
        if (!installed) throw new Error(`npm ci in ${CLIENTS_DIR} ran but the client binaries are missing`);
        return installed;
      } finally {
        rmSync(LOCK_DIR, { recursive: true, force: true });
      }
    }
    if (!lockHolderAlive()) rmSync(LOCK_DIR, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`gave up waiting for the install lock ${LOCK_DIR}`);
    await sleep(500);
  }
}

/** The pinned real clients, installed on first use. */
export function realClients(): Promise<RealClients> {
  installing ??= installOnce();
  return installing;
}

/**
 * Finding, starting and stopping a project's local hub. The hub publishes
 * server.json (url, pid, started_at) beside its secret; `ensureHub` reuses a
 * live one or spawns `hub/cli.ts` detached (so it outlives its starter) under
 * a lock file, so that sessions starting together end up with one hub.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, lstatSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { comsNetDir, hubSettings } from "../../lib/env.ts";
import {
  ensurePrivateDir,
  openPrivateFile,
  readJson,
  readPrivateText,
  refuseSymlink,
} from "../../lib/private-fs.ts";
import { pidAlive } from "../../lib/process.ts";
import { hubPaths } from "../paths.ts";
import { readSecret } from "../secret.ts";
import type { DiscoveryRecord } from "../server.ts";
import type { StoreKind } from "../store/store.ts";

export interface EnsureHubOptions {
  project: string;
  host?: string;
  port?: number;
  token?: string;
  store?: StoreKind;
  env?: NodeJS.ProcessEnv;
}

export interface HubHandle {
  url: string;
  token: string;
  pid: number;
  startedByMe: boolean;
}

const CLI = hubCliPath(import.meta.url);

/**
 * The hub CLI to spawn. From a build (.js) it sits beside this module. From
 * source it is `cli.ts`, except inside node_modules, where Node refuses to
 * strip types: there (pi loads the plugin's .ts through its own loader) the
 * package's build in dist/ is used.
 */
export function hubCliPath(moduleUrl: string): string {
  if (moduleUrl.endsWith(".js")) return fileURLToPath(new URL("../cli.js", moduleUrl));
  const source = fileURLToPath(new URL("../cli.ts", moduleUrl));
  if (!source.split(sep).includes("node_modules")) return source;
  const built = fileURLToPath(new URL("../../dist/hub/cli.js", moduleUrl));
  return existsSync(built) ? built : source;
}
const START_TIMEOUT_MS = 20_000;
/** A start lock older than this belongs to a starter that died mid-way. */
const STALE_LOCK_MS = 30_000;

export function readDiscovery(
  project: string,
  env: NodeJS.ProcessEnv = process.env,
): DiscoveryRecord | undefined {
  const data = readJson(hubPaths(project, env).discovery) as Partial<DiscoveryRecord> | undefined;
  if (typeof data?.url !== "string" || typeof data.pid !== "number" || typeof data.started_at !== "number") {
    return undefined;
  }
  return { url: data.url, pid: data.pid, started_at: data.started_at };
}

/**
 * Whether a hub answers /healthz. `ca` (PEM) is trusted for an https:// hub:
 * the hub's own self-signed certificate, when this machine started it.
 */
export async function healthy(url: string, timeoutMs = 1500, ca?: string): Promise<boolean> {
  if (url.startsWith("https:")) return healthyTls(new URL("/healthz", url), timeoutMs, ca);
  try {
    const response = await fetch(new URL("/healthz", url), { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

// fetch takes no CA of its own without an extra package; node:https does.
function healthyTls(url: URL, timeoutMs: number, ca: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet(url, { timeout: timeoutMs, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/** The certificate a locally started hub serves (PI_COMS_NET_TLS_CERT), to trust in health checks. */
function localHubCa(env: NodeJS.ProcessEnv): string | undefined {
  const path = hubSettings(env).tlsCert;
  if (!path) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The project's live local hub (pid alive and /healthz answering), or null. */
export async function findHub(
  project: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<(DiscoveryRecord & { token: string | undefined }) | null> {
  const record = readDiscovery(project, env);
  if (!record || !pidAlive(record.pid)) return null;
  if (!(await healthy(record.url, 1500, localHubCa(env)))) return null;
  return { ...record, token: readSecret(hubPaths(project, env).secret) };
}

/** A live hub for the project: the running one, or one started now (detached). */
export async function ensureHub(opts: EnsureHubOptions): Promise<HubHandle> {
  const env = opts.env ?? process.env;
  const paths = hubPaths(opts.project, env);
  const found = await findHub(opts.project, env);
  if (found?.token) return { url: found.url, token: found.token, pid: found.pid, startedByMe: false };
  ensurePrivateDir(paths.dir, comsNetDir(env));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!tryLock(paths.lock)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for another session to start the hub (${paths.lock})`);
    await sleep(100);
    const started = await findHub(opts.project, env);
    if (started?.token)
      return { url: started.url, token: started.token, pid: started.pid, startedByMe: false };
  }
  try {
    const again = await findHub(opts.project, env);
    if (again?.token) return { url: again.url, token: again.token, pid: again.pid, startedByMe: false };
    const pid = await spawnHub(opts, env, deadline);
    const token = readSecret(paths.secret);
    const record = readDiscovery(opts.project, env);
    if (!token || !record) throw new Error("the hub started but left no discovery or secret file");
    return { url: record.url, token, pid, startedByMe: true };
  } finally {
    rmSync(paths.lock, { force: true });
  }
}

function tryLock(path: string): boolean {
  try {
    const fd = openSync(path, "wx", 0o600);
    writeSync(fd, `${process.pid} ${Date.now()}\n`);
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  // A link where the lock goes was planted, not left by a starter: refuse rather than wait on it.
  refuseSymlink(path);
  // Break a lock whose holder died or that is too old to be a start in progress.
  try {
    const [pid] = (readPrivateText(path) ?? "").split(" ");
    const age = Date.now() - lstatSync(path).mtimeMs;
    if (!pidAlive(Number(pid)) || age > STALE_LOCK_MS) rmSync(path, { force: true });
  } catch {
    // it went away in between: try again next round
  }
  return false;
}

async function spawnHub(opts: EnsureHubOptions, env: NodeJS.ProcessEnv, deadline: number): Promise<number> {
  const paths = hubPaths(opts.project, env);
  const settings = hubSettings(env);
  const args = [CLI, "--project", opts.project, "--store", opts.store ?? "sqlite"];
  args.push("--host", opts.host ?? settings.host, "--port", String(opts.port ?? settings.port));
  // The token goes by environment, not argv: argv is visible to every user in ps.
  const childEnv: NodeJS.ProcessEnv = { ...env };
  if (opts.token !== undefined) childEnv.PI_COMS_NET_AUTH_TOKEN = opts.token;
  // Never appended through a planted symlink: the log is opened O_NOFOLLOW and must be our own file.
  const log = openPrivateFile(paths.log, "append");
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ["ignore", log, log],
    env: childEnv,
    cwd: paths.dir,
  });
  closeSync(log);
  let exited: number | null = null;
  child.once("exit", (code) => {
    exited = code ?? -1;
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the hub with ${process.execPath}`);
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`the hub exited (code ${exited}): ${tail(paths.log)}`);
    const record = readDiscovery(opts.project, env);
    if (record && record.pid === pid && (await healthy(record.url, 1500, localHubCa(env)))) return pid;
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`the hub did not come up within ${START_TIMEOUT_MS} ms: ${tail(paths.log)}`);
}

function tail(path: string): string {
  try {
    return (readPrivateText(path) ?? "").trim().split("\n").slice(-3).join(" | ");
  } catch {
    return "(no log)";
  }
}

/** When a process started (ms since the epoch), from /proc on Linux; null where unknown. */
function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return null;
    return btime * 1000 + (ticks * 1000) / 100;
  } catch {
    return null;
  }
}

/**
 * Stop the project's local hub. The pid is only signalled if that process
 * started when the hub said it did, so a recycled pid is never killed.
 * With `only`, just that hub (pid and start time): a hub started since by
 * someone else is left running.
 */
export async function stopHub(
  project: string,
  env: NodeJS.ProcessEnv = process.env,
  only?: Pick<DiscoveryRecord, "pid" | "started_at">,
): Promise<boolean> {
  const paths = hubPaths(project, env);
  const record = readDiscovery(project, env);
  if (!record) return false;
  if (only && (record.pid !== only.pid || record.started_at !== only.started_at)) return false;
  if (!pidAlive(record.pid)) {
    rmSync(paths.discovery, { force: true });
    return false;
  }
  const started = processStartTime(record.pid);
  if (started !== null && Math.abs(started - record.started_at) > 2000) {
    rmSync(paths.discovery, { force: true });
    return false;
  }
  if (started === null && !(await healthy(record.url, 1500, localHubCa(env)))) return false;
  process.kill(record.pid, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (pidAlive(record.pid) && Date.now() < deadline) await sleep(50);
  if (pidAlive(record.pid)) process.kill(record.pid, "SIGKILL");
  rmSync(paths.discovery, { force: true });
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

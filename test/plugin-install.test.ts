/**
 * The install lines of the README, tried with pi 1.6's own `pi install`:
 * a git source (this commit, cloned over HTTP from a local server; pi runs
 * `npm install --omit=dev` in the clone, which must not need TypeScript),
 * and the package as `npm pack` would publish it. Each installed copy loads
 * its commands and starts P2P coms. (The local checkout is installed in
 * plugin-lifecycle.test.ts.)
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  createPiWorld,
  dumpIfFailed,
  type PiProcess,
  type PiWorld,
  piCliPath,
} from "./support/pi-harness.ts";

const REPO = resolve(import.meta.dirname, "..");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");
const run = promisify(execFile);

/**
 * pi's npm install in a git clone needs the registry settings of this
 * machine (CA, proxy) and, to stay quick and work offline, its npm cache.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    npm_config_cache: process.env.npm_config_cache ?? join(homedir(), ".npm"),
    npm_config_userconfig: process.env.npm_config_userconfig ?? join(homedir(), ".npmrc"),
    npm_config_prefer_offline: "true",
    npm_config_update_notifier: "false",
  };
  for (const key of ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"])
    if (process.env[key]) env[key] = process.env[key];
  return env;
}

/** Serve a directory read-only over plain HTTP on 127.0.0.1 (git's "dumb" protocol needs nothing more). */
async function serveDir(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = resolve(root, `.${decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/")}`);
    try {
      if (!path.startsWith(root) || !statSync(path).isFile()) throw new Error("not a file");
      res.end(readFileSync(path));
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}` };
}

describe("installing pi-coms into pi", () => {
  let world: PiWorld;
  let work: string;
  let git: { server: Server; url: string };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "pi-coms-install-"));
    const bare = join(work, "srv", "owner", "pi-coms.git");
    execFileSync("git", ["clone", "-q", "--bare", REPO, bare]);
    // Serve exactly the commit under test as the default branch, whatever the checkout's HEAD looks like.
    const head = execFileSync("git", ["-C", REPO, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    execFileSync("git", ["-C", bare, "update-ref", "refs/heads/under-test", head]);
    execFileSync("git", ["-C", bare, "symbolic-ref", "HEAD", "refs/heads/under-test"]);
    execFileSync("git", ["-C", bare, "update-server-info"]);
    git = await serveDir(join(work, "srv"));
    world = await createPiWorld({ extensions: [RELOAD] });
  });
  after(async () => {
    await world?.close();
    await new Promise((ok) => git?.server.close(ok));
    rmSync(work, { recursive: true, force: true });
  });

  async function installAndUse(pi: PiProcess, source: string, name: string): Promise<void> {
    const commands = async () =>
      (await pi.request<{ commands: Array<{ name: string }> }>({ type: "get_commands" })).commands.map(
        (c) => c.name,
      );
    assert.ok(!(await commands()).includes("coms"), "not there before installing");
    await run(process.execPath, [piCliPath(), "install", source], {
      env: { ...pi.sandbox.env, ...npmEnv() },
      cwd: pi.cwd,
      timeout: 240_000,
    }).catch((error: { stderr?: string; stdout?: string }) => {
      throw new Error(`pi install ${source} failed:\n${error.stdout}\n${error.stderr}`);
    });
    await pi.prompt("/harness-reload");
    const loaded = await commands();
    for (const command of ["coms", "coms-net", "create-coms-feature-manager"])
      assert.ok(loaded.includes(command), loaded.join(","));
    const since = pi.mark();
    await pi.prompt(`/coms start --name ${name}`, { timeoutMs: 30_000 });
    const notes = pi.notifications({ since }).map((n) => `${n.notifyType}: ${n.message}`);
    assert.ok(
      notes.some((n) => n.startsWith(`info: coms active as ${name}`)),
      notes.join("\n"),
    );
    await pi.prompt("/coms stop");
  }

  describe("sources", () => {
    let pi: PiProcess;
    afterEach((t) => dumpIfFailed(t, pi));

    it("pi install git:<host>/<owner>/pi-coms installs this commit with its dependencies and runs it", async () => {
      pi = await world.startPi({ name: "from-git" });
      await installAndUse(pi, `git:${git.url}/owner/pi-coms.git`, "fromgit");
    });

    it("the npm pack tarball, unpacked, is a pi package that loads and runs", async () => {
      const packDir = join(work, "pack");
      mkdirSync(packDir);
      const packed = JSON.parse(
        execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", packDir], {
          cwd: REPO,
          encoding: "utf8",
        }),
      ) as Array<{ filename: string; files: Array<{ path: string }> }>;
      const files = packed[0]?.files.map((f) => f.path) ?? [];
      for (const dir of ["plugin/", "contract/", "lib/", "peer/", "hub/"])
        assert.ok(
          files.some((f) => f.startsWith(dir)),
          `${dir} is in the package`,
        );
      assert.ok(!files.some((f) => /^(test|bench|scripts|\.scratch|\.tmp)\//.test(f)), files.join("\n"));
      const unpacked = join(packDir, "pi-coms");
      mkdirSync(unpacked);
      execFileSync("tar", [
        "-xzf",
        join(packDir, packed[0]?.filename ?? ""),
        "-C",
        unpacked,
        "--strip-components=1",
      ]);
      // What npm does for a consumer: the runtime dependencies, no scripts.
      execFileSync(
        "npm",
        ["install", "--omit=dev", "--omit=peer", "--ignore-scripts", "--no-audit", "--no-fund"],
        {
          cwd: unpacked,
          env: { ...process.env, ...npmEnv() },
          stdio: "pipe",
        },
      );
      pi = await world.startPi({ name: "from-pack" });
      await installAndUse(pi, unpacked, "frompack");
    });
  });
});

/**
 * No symlink is followed for anything pi-coms creates or opens. Each case
 * plants a link where pi-coms expects its own file or directory, pointing at
 * a "victim" outside, and checks: a clear refusal naming the path, and the
 * victim untouched (mode, contents, and for a dangling link: not created).
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ensureHub } from "../hub/client/discovery.ts";
import { hubPaths } from "../hub/paths.ts";
import { readSecret } from "../hub/secret.ts";
import { openSqliteStore, STORE_FILE } from "../hub/store/sqlite.ts";
import { ensurePrivateDir, readJson, writeJsonAtomic } from "../lib/private-fs.ts";
import { startP2P } from "../peer/node.ts";
import { agentsDir, entryPath, lockPath } from "../peer/paths.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh, short, real temp dir with a victim directory and file that must stay as they are. */
function scene() {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "pcs-")));
  dirs.push(dir);
  const victimDir = join(dir, "victim");
  mkdirSync(victimDir);
  chmodSync(victimDir, 0o755);
  writeFileSync(join(victimDir, "keep.txt"), "precious\n");
  const victimFile = join(dir, "victim.txt");
  writeFileSync(victimFile, "precious\n");
  chmodSync(victimFile, 0o644);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: join(dir, "home"),
    PI_COMS_DIR: join(dir, "coms"),
    PI_COMS_NET_DIR: join(dir, "net"),
    PI_COMS_PING_INTERVAL_MS: "0",
  };
  return {
    dir,
    env,
    victimDir,
    victimFile,
    /** The victims are exactly as planted. */
    untouched() {
      assert.equal(statSync(victimDir).mode & 0o777, 0o755);
      assert.deepEqual(readdirSync(victimDir), ["keep.txt"]);
      assert.equal(readFileSync(join(victimDir, "keep.txt"), "utf8"), "precious\n");
      assert.equal(statSync(victimFile).mode & 0o777, 0o644);
      assert.equal(readFileSync(victimFile, "utf8"), "precious\n");
    },
  };
}

function plant(target: string, at: string): void {
  mkdirSync(join(at, ".."), { recursive: true });
  symlinkSync(target, at);
}

const refusal = (path: string) => (error: unknown) => {
  assert.ok(error instanceof Error);
  assert.ok(error.message.includes(path), `names ${path}: ${error.message}`);
  assert.match(error.message, /refusing to use .*symbolic link/);
  return true;
};

describe("private files: primitives", () => {
  it("ensurePrivateDir refuses a symlinked directory and never chmods its target", () => {
    const s = scene();
    const at = join(s.dir, "mine");
    plant(s.victimDir, at);
    assert.throws(() => ensurePrivateDir(at), refusal(at));
    s.untouched();
  });

  it("ensurePrivateDir refuses a symlink anywhere below the given root, and a dangling one creates nothing", () => {
    const s = scene();
    const root = join(s.dir, "root");
    plant(s.victimDir, join(root, "projects"));
    assert.throws(
      () => ensurePrivateDir(join(root, "projects", "p", "agents"), root),
      refusal(join(root, "projects")),
    );
    const dangling = join(s.dir, "nowhere");
    plant(dangling, join(root, "other"));
    assert.throws(() => ensurePrivateDir(join(root, "other", "x"), root), refusal(join(root, "other")));
    assert.equal(existsSync(dangling), false);
    s.untouched();
  });

  it("a symlinked JSON file is refused, not read; an atomic write replaces the link, not its target", () => {
    const s = scene();
    const at = join(s.dir, "file.json");
    plant(s.victimFile, at);
    assert.throws(() => readJson(at), refusal(at));
    writeJsonAtomic(at, { mine: true });
    assert.deepEqual(readJson(at), { mine: true });
    assert.equal(statSync(at).mode & 0o777, 0o600);
    s.untouched();
  });
});

describe("P2P: symlinks planted in the registry", () => {
  it("agents/ as a symlink: the node refuses to start and the target keeps its mode", async () => {
    const s = scene();
    const at = agentsDir("p", s.env);
    plant(s.victimDir, at);
    await assert.rejects(startP2P({ name: "a", project: "p", env: s.env }), refusal(at));
    s.untouched();
  });

  it("run/ as a symlink: refused before the socket is made", async () => {
    const s = scene();
    const at = join(s.env.PI_COMS_DIR as string, "run");
    plant(s.victimDir, at);
    await assert.rejects(startP2P({ name: "a", project: "p", env: s.env }), refusal(at));
    s.untouched();
  });

  it("the temp-dir socket fallback as a symlink: refused, target not chmod-ed", async () => {
    const s = scene();
    // Too deep for a socket path, so sockets go to $TMPDIR/pi-coms-<uid>.
    const env = {
      ...s.env,
      PI_COMS_DIR: join(s.dir, "d".repeat(60), "e".repeat(60)),
      TMPDIR: join(s.dir, "t"),
    };
    const at = join(s.dir, "t", `pi-coms-${process.getuid?.() ?? "user"}`);
    plant(s.victimDir, at);
    await assert.rejects(startP2P({ name: "a", project: "p", env }), refusal(at));
    s.untouched();
  });

  it("an entry planted as a symlink is never read or written through; the name goes to the next free one", async () => {
    const s = scene();
    const at = entryPath("p", "a", s.env);
    plant(s.victimFile, at);
    const node = await startP2P({ name: "a", project: "p", env: s.env });
    try {
      assert.equal(node.self.name, "a2");
      assert.deepEqual(await node.list(), []);
    } finally {
      await node.close();
    }
    s.untouched();
  });

  it("the registry lock as a symlink: a clear refusal, not a wait", async () => {
    const s = scene();
    const at = lockPath("p", s.env);
    plant(s.victimFile, at);
    await assert.rejects(startP2P({ name: "a", project: "p", env: s.env }), refusal(at));
    s.untouched();
  });
});

describe("hub: symlinks planted in the project's hub directory", () => {
  it("hub.log as a symlink: the hub is not started and the target is not appended to", async () => {
    const s = scene();
    const at = hubPaths("h", s.env).log;
    plant(s.victimFile, at);
    await assert.rejects(ensureHub({ project: "h", env: s.env }), refusal(at));
    s.untouched();
  });

  it("the project's hub directory as a symlink: refused, target not chmod-ed", async () => {
    const s = scene();
    const at = hubPaths("h", s.env).dir;
    plant(s.victimDir, at);
    await assert.rejects(ensureHub({ project: "h", env: s.env }), refusal(at));
    s.untouched();
  });

  it("server.json and server.secret.json as symlinks: refused, not read", async () => {
    const s = scene();
    const paths = hubPaths("h", s.env);
    plant(s.victimFile, paths.discovery);
    await assert.rejects(ensureHub({ project: "h", env: s.env }), refusal(paths.discovery));
    plant(s.victimFile, paths.secret);
    assert.throws(() => readSecret(paths.secret), refusal(paths.secret));
    s.untouched();
  });

  it("the hub start lock as a symlink: a clear refusal, not a wait", async () => {
    const s = scene();
    const at = hubPaths("h", s.env).lock;
    plant(s.victimFile, at);
    await assert.rejects(ensureHub({ project: "h", env: s.env }), refusal(at));
    s.untouched();
  });

  it("hub.sqlite as a symlink (to a file, or dangling) and its -wal/-shm siblings: SQLite never opens them", async () => {
    const s = scene();
    const dir = join(s.dir, "store");
    mkdirSync(dir, { mode: 0o700 });
    const db = join(dir, STORE_FILE);
    plant(s.victimFile, db);
    await assert.rejects(openSqliteStore(dir), refusal(db));
    rmSync(db);
    const dangling = join(s.dir, "created-through-link.sqlite");
    plant(dangling, db);
    await assert.rejects(openSqliteStore(dir), refusal(db));
    assert.equal(existsSync(dangling), false);
    rmSync(db);
    for (const suffix of ["-wal", "-shm"]) {
      const sibling = db + suffix;
      plant(`${dangling}${suffix}`, sibling);
      await assert.rejects(openSqliteStore(dir), refusal(sibling));
      assert.equal(existsSync(`${dangling}${suffix}`), false);
      rmSync(sibling);
    }
    // With nothing planted, the same directory opens fine.
    const store = await openSqliteStore(dir);
    store.close();
    s.untouched();
  });
});

/**
 * The published package as a consumer gets it: build (what `prepare` runs),
 * `npm pack`, unpack into a consumer's node_modules, then
 *  - a consumer file compiles against the shipped .d.ts, and a wrong call
 *    is a compile-time error;
 *  - plain JS imports `pi-coms/client` (Node does not strip types inside
 *    node_modules, so this proves the shipped JS runs) and two peers talk;
 *  - the `pi-coms` bin runs, and starts and stops the shipped hub.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "node_modules", ".bin");
// Inside the repo (git-ignored .tmp/) so the unpacked package resolves its dependencies from ours.
mkdirSync(join(ROOT, ".tmp"), { recursive: true });
const work = mkdtempSync(join(ROOT, ".tmp", "package-test-"));
const pkgDir = join(work, "node_modules", "pi-coms");
let files: string[] = [];
let hubPid: number | undefined;

before(() => {
  execFileSync(join(BIN, "tsc"), ["-p", "tsconfig.build.json"], { cwd: ROOT, stdio: "pipe" });
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` },
    }),
  ) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const first = packed[0];
  assert.ok(first);
  files = first.files.map((f) => f.path);
  mkdirSync(pkgDir, { recursive: true });
  execFileSync("tar", ["-xzf", join(work, first.filename), "-C", pkgDir, "--strip-components=1"]);
});

after(() => {
  if (hubPid !== undefined) {
    try {
      process.kill(hubPid, "SIGKILL");
    } catch {
      // Already stopped, as it should be.
    }
  }
  rmSync(work, { recursive: true, force: true });
});

describe("the published package", () => {
  it("ships the built JS and types, the sources pi loads, and no tests", () => {
    for (const path of [
      "dist/client/index.js",
      "dist/client/index.d.ts",
      "dist/client/cli.js",
      "dist/contract/schemas.d.ts",
      "plugin/index.ts",
      "contract/router.ts",
      "README.md",
      "package.json",
    ]) {
      assert.ok(files.includes(path), `${path} is in the package`);
    }
    assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("bench/") || f.startsWith(".ci/")));
  });

  it("type-checks a right call and rejects a wrong one at compile time", () => {
    const consumer = join(work, "consumer");
    mkdirSync(consumer, { recursive: true });
    writeFileSync(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2023",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          types: ["node"],
          typeRoots: [join(ROOT, "node_modules", "@types")],
        },
      }),
    );
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ type: "module" }));
    const good = [
      'import { type ComsClient, ComsError, connectHub, connectPeer, type Outcome, serve } from "pi-coms/client";',
      'import * as root from "pi-coms";',
      'const client: ComsClient = await connectPeer({ name: "ci", project: "demo" });',
      'const ack = await client.send({ to: "reviewer", prompt: "hi", conversation_id: "c1" });',
      "const outcome: Outcome = await client.await(ack.msg_id, { timeoutMs: 1000, signal: AbortSignal.timeout(5) });",
      'const text: string = outcome.state === "reply" ? outcome.text : outcome.state;',
      "const serving = serve(client, async (m) => ({ text: m.prompt, value: { ok: true } }), { concurrency: 2 });",
      "await serving.stop();",
      'const hub = await root.connectHub({ url: "http://127.0.0.1:1", token: "t".repeat(32) });',
      'const e = new ComsError("TIMEOUT", "x");',
      "export { connectHub, e, hub, text };",
    ].join("\n");
    writeFileSync(join(consumer, "good.ts"), good);
    const ok = spawnSync(join(BIN, "tsc"), ["-p", "."], { cwd: consumer, encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);

    const bad = [
      'import { connectPeer, serve } from "pi-coms/client";',
      'const client = await connectPeer({ name: "ci" });',
      'await client.send({ to: "reviewer" });', // prompt is required
      'const outcome = await client.get("01ARZ3NDEKTSV4RRFFQ69G5FAV");',
      "outcome.text;", // only a reply has text: narrow first
      "serve(client, async () => 42);", // a handler answers with text
      'await connectPeer({ nmae: "typo" });',
    ].join("\n");
    writeFileSync(join(consumer, "bad.ts"), bad);
    const failed = spawnSync(join(BIN, "tsc"), ["-p", "."], { cwd: consumer, encoding: "utf8" });
    assert.notEqual(failed.status, 0);
    const errors = failed.stdout.split("\n").filter((line) => /error TS\d+/.test(line));
    assert.ok(
      errors.every((line) => line.startsWith("bad.ts")),
      `only bad.ts fails:\n${failed.stdout}`,
    );
    for (const line of [3, 5, 6, 7]) {
      assert.ok(
        errors.some((e) => e.startsWith(`bad.ts(${line},`)),
        `bad.ts line ${line} is an error:\n${failed.stdout}`,
      );
    }
  });

  it("runs from node_modules as plain JS: two peers talk, and the bin answers --help", () => {
    const home = join(work, "home");
    mkdirSync(home, { recursive: true });
    const script = [
      'import { connectPeer, serve } from "pi-coms/client";',
      'const a = await connectPeer({ project: "pkg", name: "a" });',
      'const b = await connectPeer({ project: "pkg", name: "b" });',
      "const s = serve(b, (m) => 'b got ' + m.prompt);",
      'const ack = await a.send({ to: "b", prompt: "ping" });',
      "const out = await a.await(ack.msg_id, { timeoutMs: 15000 });",
      "console.log(JSON.stringify(out));",
      "await s.stop(); await a.close(); await b.close();",
    ].join("\n");
    writeFileSync(join(work, "run.mjs"), script);
    const env = { ...process.env, HOME: home, PI_COMS_DIR: join(home, "coms") };
    const run = spawnSync(process.execPath, ["run.mjs"], {
      cwd: work,
      env,
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout.trim()) as { state: string; text: string };
    assert.deepEqual([outcome.state, outcome.text], ["reply", "b got ping"]);
    assert.deepEqual(
      readdirSync(join(home, "coms", "projects", "pkg", "agents")),
      [],
      "both left the registry",
    );

    const help = spawnSync(process.execPath, [join(pkgDir, "dist", "client", "cli.js"), "--help"], {
      env,
      encoding: "utf8",
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: pi-coms <command>/);

    // The shipped CLI starts the shipped hub (JS, not the .ts sources) and stops it again.
    const bin = (...args: string[]) =>
      spawnSync(process.execPath, [join(pkgDir, "dist", "client", "cli.js"), ...args, "--project", "pkg"], {
        env: { ...env, PI_COMS_NET_DIR: join(home, "coms-net") },
        encoding: "utf8",
        timeout: 30_000,
      });
    const started = bin("hub", "start", "--json");
    assert.equal(started.status, 0, started.stderr);
    hubPid = (JSON.parse(started.stdout) as { pid: number }).pid;
    const listed = bin("list", "--net", "--json");
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), []);
    const stopped = bin("hub", "stop", "--json");
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.deepEqual(JSON.parse(stopped.stdout), { project: "pkg", stopped: true });
  });
});

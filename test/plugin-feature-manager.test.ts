/**
 * /create-coms-feature-manager: project detection and the generated prompt
 * (unit), and the command in real pi: writes the file, asks before
 * overwriting, and after a reload the prompt is a command.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { detectProject, FEATURE_MANAGER_PATH, renderFeatureManager } from "../plugin/feature-manager.ts";
import {
  createPiWorld,
  type DialogAnswer,
  dumpIfFailed,
  type PiProcess,
  type PiWorld,
} from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");

function project(files: Record<string, string>, dirs: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), "fm-"));
  for (const d of dirs) mkdirSync(join(dir, d), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe("feature manager generator", () => {
  const made: string[] = [];
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  const mk = (files: Record<string, string>, dirs: string[] = []) => {
    const dir = project(files, dirs);
    made.push(dir);
    return dir;
  };

  it("detects a TypeScript project with pnpm, its scripts and layout", () => {
    const dir = mk(
      {
        "package.json": JSON.stringify({ name: "shop", scripts: { test: "vitest", lint: "eslint ." } }),
        "tsconfig.json": "{}",
        "pnpm-lock.yaml": "",
      },
      ["src", "test", "node_modules", ".git"],
    );
    const info = detectProject(dir);
    assert.deepEqual(info, {
      name: "shop",
      languages: ["TypeScript"],
      packageManager: "pnpm",
      testCommand: "pnpm run test",
      lintCommand: "pnpm run lint",
      layout: ["src", "test"],
      sourceDirs: ["src"],
      testDirs: ["test"],
    });
  });

  it("detects Python with uv, Rust, Go, and falls back to make targets", () => {
    const py = detectProject(
      mk({ "pyproject.toml": "[tool.pytest.ini_options]\n[tool.ruff]\n", "uv.lock": "" }, ["tests"]),
    );
    assert.equal(py.languages[0], "Python");
    assert.equal(py.testCommand, "uv run pytest");
    assert.equal(py.lintCommand, "uv run ruff check .");
    const rust = detectProject(mk({ "Cargo.toml": "[package]" }, ["src"]));
    assert.deepEqual(
      [rust.languages, rust.testCommand, rust.lintCommand],
      [["Rust"], "cargo test", "cargo clippy -- -D warnings"],
    );
    const go = detectProject(mk({ "go.mod": "module x" }, ["cmd", "internal"]));
    assert.deepEqual(
      [go.testCommand, go.lintCommand, go.sourceDirs],
      ["go test ./...", "go vet ./...", ["cmd", "internal"]],
    );
    const make = detectProject(mk({ Makefile: "test:\n\techo\nlint:\n\techo\n" }));
    assert.deepEqual([make.languages, make.testCommand, make.lintCommand], [[], "make test", "make lint"]);
  });

  it("names the folders that hold code as source folders (seven here; tools/ reads as auxiliary by its name)", () => {
    const repo = join(import.meta.dirname, "..");
    const info = detectProject(repo);
    for (const dir of ["client", "contract", "hub", "lib", "mcp", "peer", "plugin"])
      assert.ok(info.sourceDirs.includes(dir), `${dir} in ${info.sourceDirs.join(",")}`);
    for (const dir of ["test", "bench", "examples", "scripts", "node_modules", "dist"])
      assert.ok(!info.sourceDirs.includes(dir), `${dir} is not a source folder`);
    assert.deepEqual(info.testDirs, ["test"]);
    assert.match(
      renderFeatureManager(info),
      /sources in `client\/`, `contract\/`, `hub\/`, `lib\/`, `mcp\/`, `peer\/`, `plugin\/`; tests in `test\/`/,
    );
    const nested = mk({ "package.json": "{}" }, ["api/routes", "web", "docs"]);
    writeFileSync(join(nested, "api", "routes", "users.ts"), "export {};");
    writeFileSync(join(nested, "docs", "build.js"), "");
    assert.deepEqual(detectProject(nested).sourceDirs, ["api"]);
  });

  it("renders roles, the loop, stop conditions and budgets with the project's commands", () => {
    const text = renderFeatureManager({
      name: "shop",
      languages: ["TypeScript"],
      packageManager: "npm",
      testCommand: "npm test",
      lintCommand: "npm run lint",
      layout: ["src", "test"],
      sourceDirs: ["src"],
      testDirs: ["test"],
    });
    assert.match(text, /^---\ndescription: .+\nargument-hint: "<feature to build>"\n---\n/);
    for (const needle of [
      "**manager**",
      "**coder**",
      "Review",
      "Feedback",
      "Fix",
      "Re-review",
      "## Stop conditions",
      "15 messages",
      "3 times in a row",
      "`npm test`",
      "`npm run lint`",
      "coms_send",
      "coms_await",
      "coms_net_send",
      "Feature: $@",
    ])
      assert.ok(text.includes(needle), `missing ${needle}`);
  });
});

describe("/create-coms-feature-manager in real pi", () => {
  let world: PiWorld;
  let pi: PiProcess;
  const answers: DialogAnswer[] = [];

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN, RELOAD] });
    writeFileSync(
      join(world.project, "package.json"),
      JSON.stringify({ name: "demo-app", scripts: { test: "node --test" } }),
    );
    pi = await world.startPi({
      name: "lead",
      onDialog: (request) => {
        assert.equal(request.method, "confirm");
        return answers.shift() ?? { cancelled: true };
      },
    });
  });
  afterEach((t) => dumpIfFailed(t, pi));
  after(async () => {
    await world?.close();
  });

  it("writes the prompt, asks before overwriting, and /reload makes it a command", async () => {
    const path = join(world.project, FEATURE_MANAGER_PATH);
    let since = pi.mark();
    await pi.prompt("/create-coms-feature-manager");
    const written = readFileSync(path, "utf8");
    assert.match(written, /Coms feature manager for demo-app/);
    assert.match(written, /`npm test`/);
    assert.match(pi.notifications({ since })[0]?.message ?? "", /Run \/reload.*\/coms-feature-manager/);

    writeFileSync(path, "my own edits");
    answers.push({ confirmed: false });
    since = pi.mark();
    await pi.prompt("/create-coms-feature-manager");
    assert.equal(readFileSync(path, "utf8"), "my own edits", "declined: nothing written");
    assert.ok(pi.collectExtensionUi("confirm", { since }).length === 1, "asked once");
    assert.match(pi.notifications({ since })[0]?.message ?? "", /Kept the existing/);

    answers.push({ confirmed: true });
    await pi.prompt("/create-coms-feature-manager");
    assert.match(readFileSync(path, "utf8"), /Coms feature manager for demo-app/);

    await pi.prompt("/harness-reload");
    const commands = await pi.request<{ commands: Array<{ name: string; source: string }> }>({
      type: "get_commands",
    });
    assert.ok(
      commands.commands.some((c) => c.name === "coms-feature-manager" && c.source === "prompt"),
      JSON.stringify(commands.commands.map((c) => c.name)),
    );
  });
});

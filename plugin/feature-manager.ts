/**
 * `/create-coms-feature-manager`: look at the project (language, package
 * manager, test and lint commands, layout) and write a prompt template that
 * turns this session into a manager directing a coder over coms, with a
 * review → feedback → fix → re-review loop, stop conditions and budgets.
 * Detection and rendering are pure functions of the directory.
 */
import { type Dirent, existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";

export const FEATURE_MANAGER_PATH = join(".pi", "prompts", "coms-feature-manager.md");

export interface ProjectInfo {
  name: string;
  languages: string[];
  packageManager: string | null;
  testCommand: string | null;
  lintCommand: string | null;
  /** Top-level directories worth knowing about. */
  layout: string[];
  sourceDirs: string[];
  testDirs: string[];
}

const SKIP_DIRS = new Set([
  "node_modules",
  "dist",
  "build",
  "target",
  "vendor",
  "coverage",
  "out",
  "__pycache__",
]);

function readJsonFile(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

const TEST_DIR = /^(tests?|spec|__tests__|e2e)$/;
const SOURCE_DIR = /^(src|lib|app|pkg|cmd|internal|packages|crates)$/;
/** Folders with code that is not the product: examples, benchmarks, docs, tooling, fixtures. */
const AUXILIARY_DIR = /^(examples?|bench(marks?)?|docs?|scripts?|tools?|fixtures|assets|static|public)$/;
const CODE_FILE = /\.(ts|tsx|mts|js|jsx|mjs|py|rs|go|java|kt|rb|c|cc|cpp|h|hpp|cs|swift|php|ex|exs)$/;

/** Whether a folder has code files at its top or one level down (bounded: a quick look, not a crawl). */
function holdsCode(path: string, depth = 1): boolean {
  let entries: Dirent[];
  try {
    entries = readdirSync(path, { withFileTypes: true }).slice(0, 200);
  } catch {
    return false;
  }
  if (entries.some((e) => e.isFile() && CODE_FILE.test(e.name) && !/\.d\.ts$/.test(e.name))) return true;
  return (
    depth > 0 &&
    entries.some(
      (e) =>
        e.isDirectory() &&
        !e.name.startsWith(".") &&
        !SKIP_DIRS.has(e.name) &&
        holdsCode(join(path, e.name), depth - 1),
    )
  );
}

function makeTargets(dir: string): Set<string> {
  const text = readText(join(dir, "Makefile"));
  return new Set([...text.matchAll(/^([A-Za-z0-9_.-]+):/gm)].map((m) => m[1] as string));
}

export function detectProject(dir: string): ProjectInfo {
  const has = (file: string) => existsSync(join(dir, file));
  const languages: string[] = [];
  let packageManager: string | null = null;
  let testCommand: string | null = null;
  let lintCommand: string | null = null;
  let name = basename(dir);

  const pkg = readJsonFile(join(dir, "package.json"));
  if (pkg) {
    if (typeof pkg.name === "string") name = pkg.name;
    languages.push(has("tsconfig.json") ? "TypeScript" : "JavaScript");
    packageManager = has("pnpm-lock.yaml")
      ? "pnpm"
      : has("yarn.lock")
        ? "yarn"
        : has("bun.lockb") || has("bun.lock")
          ? "bun"
          : "npm";
    const scripts = (pkg.scripts ?? {}) as Record<string, unknown>;
    const run = (script: string) =>
      packageManager === "npm"
        ? script === "test"
          ? "npm test"
          : `npm run ${script}`
        : `${packageManager} run ${script}`;
    if (typeof scripts.test === "string") testCommand = run("test");
    for (const script of ["lint", "check", "typecheck"]) {
      if (!lintCommand && typeof scripts[script] === "string") lintCommand = run(script);
    }
    if (!lintCommand && (has("biome.json") || has("biome.jsonc"))) lintCommand = "npx biome check .";
    if (
      !lintCommand &&
      [".eslintrc", ".eslintrc.json", ".eslintrc.js", "eslint.config.js", "eslint.config.mjs"].some(has)
    )
      lintCommand = "npx eslint .";
  }
  if (has("pyproject.toml") || has("setup.py") || has("requirements.txt")) {
    languages.push("Python");
    const pyproject = readText(join(dir, "pyproject.toml"));
    const runner = has("uv.lock") ? "uv run " : has("poetry.lock") ? "poetry run " : "";
    packageManager ??= has("uv.lock")
      ? "uv"
      : has("poetry.lock")
        ? "poetry"
        : has("Pipfile")
          ? "pipenv"
          : "pip";
    if (!testCommand && (pyproject.includes("pytest") || has("tests") || has("pytest.ini")))
      testCommand = `${runner}pytest`;
    if (!lintCommand && (pyproject.includes("[tool.ruff") || has("ruff.toml")))
      lintCommand = `${runner}ruff check .`;
  }
  if (has("Cargo.toml")) {
    languages.push("Rust");
    packageManager ??= "cargo";
    testCommand ??= "cargo test";
    lintCommand ??= "cargo clippy -- -D warnings";
  }
  if (has("go.mod")) {
    languages.push("Go");
    packageManager ??= "go";
    testCommand ??= "go test ./...";
    lintCommand ??= has(".golangci.yml") || has(".golangci.yaml") ? "golangci-lint run" : "go vet ./...";
  }
  if (has("pom.xml")) {
    languages.push("Java");
    packageManager ??= "maven";
    testCommand ??= "mvn test";
  } else if (has("build.gradle") || has("build.gradle.kts")) {
    languages.push(has("build.gradle.kts") ? "Kotlin" : "Java");
    packageManager ??= "gradle";
    testCommand ??= "./gradlew test";
  }
  if (has("Gemfile")) {
    languages.push("Ruby");
    packageManager ??= "bundler";
    testCommand ??= has("spec") ? "bundle exec rspec" : "bundle exec rake test";
  }
  const targets = makeTargets(dir);
  if (!testCommand && targets.has("test")) testCommand = "make test";
  if (!lintCommand && targets.has("lint")) lintCommand = "make lint";

  let layout: string[] = [];
  try {
    layout = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith(".") && !SKIP_DIRS.has(e.name))
      .map((e) => e.name)
      .sort()
      .slice(0, 20);
  } catch {
    // an unreadable directory: no layout to report
  }
  const testDirs = layout.filter((d) => TEST_DIR.test(d));
  // A conventional name, or any other folder that holds code (a project may spread its sources over many).
  const sourceDirs = layout.filter(
    (d) => SOURCE_DIR.test(d) || (!TEST_DIR.test(d) && !AUXILIARY_DIR.test(d) && holdsCode(join(dir, d))),
  );
  return { name, languages, packageManager, testCommand, lintCommand, layout, sourceDirs, testDirs };
}

export function renderFeatureManager(info: ProjectInfo): string {
  const lang = info.languages.length ? info.languages.join(" + ") : "an undetected language";
  const test = info.testCommand ?? "(no test command detected: agree on one with the user first)";
  const lint = info.lintCommand ?? "(no lint command detected)";
  const layout = info.layout.length ? info.layout.map((d) => `\`${d}/\``).join(", ") : "(flat)";
  return `---
description: Manage a coder agent over coms to build a feature in ${info.name} (review → feedback → fix → re-review)
argument-hint: "<feature to build>"
---
# Coms feature manager for ${info.name}

You are the **manager**. You do not write the feature yourself: a **coder** agent in another pi session implements it, and you review and direct it over coms until the feature is done.

Feature: $@

## The project

- Language: ${lang}${info.packageManager ? `; package manager: ${info.packageManager}` : ""}
- Tests: \`${test}\`
- Lint / checks: \`${lint}\`
- Layout: ${layout}${info.sourceDirs.length ? `; sources in ${info.sourceDirs.map((d) => `\`${d}/\``).join(", ")}` : ""}${
    info.testDirs.length ? `; tests in ${info.testDirs.map((d) => `\`${d}/\``).join(", ")}` : ""
  }

## Roles

- **Manager (you)**: split the feature into small, checkable steps; send one step at a time; review every result by reading the diff and running the tests and lint yourself; give concrete feedback; decide when it is done.
- **Coder (the peer)**: implements exactly the step it is given, runs \`${test}\` and \`${lint}\`, and answers with a short report: files changed, what was done, test and lint results, open questions. The coder's final message is its reply; it does not message you back otherwise.

## Finding the coder

1. Use \`coms_list\` (or \`coms_net_list\` when working over the hub) to find the coder. Prefer an agent whose purpose mentions coding or implementing; if there are several candidates or none, ask the user.
2. Send the first message with \`coms_send\` (or \`coms_net_send\`): the coder's role as above, the whole feature in two or three sentences, and the first step. Then wait with \`coms_await\` (or \`coms_net_await\`).

## The loop

1. **Assign**: one step, with acceptance criteria the coder can check.
2. **Review**: when the reply arrives, inspect the changes (\`git diff\`), run \`${test}\` and \`${lint}\` yourself, and check the acceptance criteria.
3. **Feedback**: if anything is wrong, send a numbered list of concrete problems (file, what, why) and nothing else.
4. **Fix**: the coder fixes exactly those points and reports back.
5. **Re-review**: review again from step 2. When the step passes, assign the next one.

## Stop conditions

Stop the loop and report to the user when any of these holds:

- **Done**: every step is accepted, \`${test}\` passes and \`${lint}\` is clean.
- **Review budget**: a single step failed review 3 times in a row: stop and describe the disagreement.
- **Message budget**: you have sent 15 messages to the coder for this feature: stop and summarise where things stand.
- **No answer**: two waits in a row ended without a reply (timeout or error): stop and tell the user the coder is not responding.
- **Scope**: the coder reports that the step needs a decision you cannot make (design, dependencies, deleting data): ask the user.

## Rules

- Keep every message short and specific: at most about 300 words, one step per message.
- Never forward a message you received to a third agent unless the user asked for it (hop limits apply).
- If a peer prompt arrives while you are waiting, answer it, then wait again.
- At the end, give the user a summary: what was built, the files changed, the final test and lint results, and any follow-ups.
`;
}

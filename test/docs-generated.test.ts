/**
 * Reference that cannot drift: the flag and variable tables in docs/*.md are
 * what scripts/docs-tables.ts makes from the code's own definitions, and
 * docs/reference/ is what TypeDoc makes from the typed client's types (a
 * TypeDoc warning, such as a broken link or a type left out, fails too).
 * Fix a failure with `npm run docs`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { docsPages, regenerate, TABLES } from "../scripts/docs-tables.ts";

const ROOT = resolve(import.meta.dirname, "..");

function tree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), readFileSync(path, "utf8"));
  }
  return files;
}

describe("generated tables in docs/", () => {
  it("every table matches what the code parses (npm run docs:tables)", () => {
    const used = new Set<string>();
    for (const page of docsPages()) {
      const text = readFileSync(page, "utf8");
      assert.equal(regenerate(text, used), text, `${relative(ROOT, page)}: a generated table is out of date`);
    }
    assert.deepEqual([...used].sort(), Object.keys(TABLES).sort(), "each generated table is on some page");
  });

  it("a table that no longer says what the code does is caught", () => {
    const page = readFileSync(join(ROOT, "docs", "hub.md"), "utf8");
    const edited = page.replace("| `--max-agents N` |", "| `--max-agentz N` |");
    assert.notEqual(edited, page);
    assert.notEqual(regenerate(edited), edited);
  });
});

describe("API reference of the typed client (docs/reference/)", () => {
  const out = mkdtempSync(join(tmpdir(), "pi-coms-typedoc-"));
  after(() => rmSync(out, { recursive: true, force: true }));

  it("is what TypeDoc makes from the current types, with no warning (npm run docs:reference)", () => {
    const typedoc = join(ROOT, "node_modules", "typedoc", "bin", "typedoc");
    const run = spawnSync(process.execPath, [typedoc, "--out", out, "--logLevel", "Warn"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(run.status, 0, `typedoc failed:\n${run.stdout}\n${run.stderr}`);
    const made = tree(out);
    const kept = tree(join(ROOT, "docs", "reference"));
    assert.deepEqual([...kept.keys()].sort(), [...made.keys()].sort(), "the same pages");
    for (const [path, text] of made)
      assert.equal(kept.get(path), text, `docs/reference/${path} is out of date`);
  });
});

/**
 * The `pretest` step (scripts/test-deps.mjs): with everything the suite
 * drives on the machine it passes quietly; when something is missing and it
 * cannot install it (here: no apt-get on PATH), it stops with one line that
 * names what is missing and the exact command to run.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";

const SCRIPT = resolve(import.meta.dirname, "..", "scripts", "test-deps.mjs");
const bare = mkdtempSync(join(tmpdir(), "pi-coms-bare-path-"));
// A PATH holding only node: none of the programs, and no apt-get to install them with.
symlinkSync(process.execPath, join(bare, "node"));
after(() => rmSync(bare, { recursive: true, force: true }));

function deps(env: NodeJS.ProcessEnv, ...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: "utf8" });
}

describe("npm test's pretest step", () => {
  it("passes quietly when every program the tests drive is there", () => {
    const result = deps(process.env);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, "");
  });

  it("stops with one line naming what is missing and the command when it cannot install", () => {
    const result = deps({ PATH: bare, PI_COMS_TEST_CHROMIUM: join(bare, "no-chromium") });
    assert.equal(result.status, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.equal(
      lines[0],
      "npm test needs redis-server, tmux, chromium, openssl, script, git: run " +
        "`sudo apt-get install -y redis-server tmux chromium openssl bsdutils git` (Debian/Ubuntu), then npm test again",
    );
  });

  it("names only what is missing (--check: report, never install)", () => {
    const result = deps({ ...process.env, PI_COMS_TEST_CHROMIUM: join(bare, "no-chromium") }, "--check");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /needs chromium: run `sudo apt-get install -y chromium`/);
  });
});

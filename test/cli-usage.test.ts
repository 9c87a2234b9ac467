/**
 * The CLI as a real process, before it connects anywhere: help on every
 * command, and bad arguments rejected with a clear message and exit 2
 * without touching the registry.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";

const CLI = resolve(import.meta.dirname, "..", "client", "cli.ts");
const home = mkdtempSync(join(tmpdir(), "pi-coms-cli-usage-"));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  HOME: home,
  PI_COMS_DIR: join(home, "coms"),
  PI_COMS_NET_DIR: join(home, "coms-net"),
};
delete env.PI_COMS_NET_AUTH_TOKEN;
after(() => rmSync(home, { recursive: true, force: true }));

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { env, encoding: "utf8", timeout: 20_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe("pi-coms usage", () => {
  it("prints the overview with every command and the exit codes", () => {
    for (const args of [[], ["--help"], ["-h"], ["help"]]) {
      const run = cli(...args);
      assert.equal(run.code, 0, args.join(" "));
      for (const word of ["list", "send", "get", "await", "listen", "hub", "Exit codes", "--net", "--json"]) {
        assert.match(run.stdout, new RegExp(word.replace(/-/g, "\\-")));
      }
    }
  });

  it("has --help on every command", () => {
    const usage: Record<string, RegExp> = {
      list: /pi-coms list/,
      send: /pi-coms send <to> <prompt>/,
      get: /pi-coms get <msg_id>/,
      await: /pi-coms await <msg_id>/,
      listen: /pi-coms listen/,
      hub: /pi-coms hub start\|stop\|status/,
    };
    for (const [command, pattern] of Object.entries(usage)) {
      for (const args of [
        [command, "--help"],
        [command, "-h"],
        ["help", command],
      ]) {
        const run = cli(...args);
        assert.equal(run.code, 0, args.join(" "));
        assert.match(run.stdout, pattern);
        assert.match(run.stdout, /Exit codes/);
        assert.equal(run.stderr, "");
      }
    }
  });

  it("rejects bad arguments with a clear message and exit 2", () => {
    const cases: Array<[string[], RegExp]> = [
      [["frob"], /unknown command "frob"/],
      [["--net"], /expected a command/],
      [["send", "bob"], /missing <prompt>/],
      [["send", "bob", "hi", "extra"], /unexpected argument "extra"/],
      [["send", "../etc", "hi"], /<to> "\.\.\/etc": names are/],
      [["send", "bob", "hi", "--await", "--timeout", "soon"], /--timeout must be an integer/],
      [["send", "bob", "hi", "--timeout", "100"], /--timeout needs --await/],
      [["send", "bob", ""], /prompt is empty/],
      [["list", "--bogus"], /Unknown option '--bogus'/],
      [["list", "--project", "a b"], /--project "a b"/],
      [["list", "--url", "ftp://x"], /--url must be http/],
      [["list", "--url", "http://user:pw@127.0.0.1:1"], /must not carry credentials/],
      [["get", "not-a-ulid", "--net"], /<msg_id> "not-a-ulid": msg_id is a ULID/],
      [["get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], /needs the hub \(--net\)/],
      [["await", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], /needs the hub \(--net\)/],
      [["listen", "--max", "0"], /--max must be an integer >= 1/],
      [["listen", "--color", "red"], /--color "red": colours are #RRGGBB/],
      [["hub"], /missing <action>/],
      [["hub", "restart"], /start, stop, status or open/],
      [["hub", "status", "--port", "80"], /only apply to hub start/],
      [["hub", "start", "--port", "70000"], /--port must be 0-65535/],
      [["hub", "start", "--host", "0.0.0.0"], /lets other machines reach the hub: give --auth-token/],
    ];
    for (const [args, message] of cases) {
      const run = cli(...args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(" "));
      assert.match(run.stderr, /Usage: pi-coms/);
      assert.equal(run.stdout, "");
    }
    // Nothing was created: a usage error changes nothing.
    assert.equal(existsSync(join(home, "coms")), false);
    assert.equal(existsSync(join(home, "coms-net")), false);
  });
});

/**
 * `npm start` as a user runs it on a fresh machine: a hub and two scripted
 * agents exchange a prompt and a reply over P2P and over the hub, the demo
 * exits 0, and nothing is left behind (no scratch dir, no socket, no hub
 * process, nothing under the user's ~/.pi).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { pidAlive as alive } from "../lib/process.ts";

const ROOT = resolve(import.meta.dirname, "..");
const sandbox = mkdtempSync(join(tmpdir(), "pi-coms-demo-test-"));
const scratch = join(sandbox, "tmp");
const home = join(sandbox, "home");
let hubPid: number | undefined;

after(() => {
  if (hubPid !== undefined && alive(hubPid)) process.kill(hubPid, "SIGKILL");
  rmSync(sandbox, { recursive: true, force: true });
});

describe("npm start (the demo)", () => {
  it("exchanges a prompt and a reply over P2P and over the hub, then leaves nothing behind", async () => {
    mkdirSync(scratch, { recursive: true });
    mkdirSync(home, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      TMPDIR: scratch,
      PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`,
    };
    for (const key of Object.keys(env)) if (key.startsWith("PI_COMS_")) delete env[key];

    const child = spawn("npm", ["start", "--silent"], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((done, fail) => {
      const timer = setTimeout(() => {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
        fail(new Error(`the demo did not exit within 45 s:\n${stdout}\n${stderr}`));
      }, 45_000);
      child.on("close", (exit) => {
        clearTimeout(timer);
        done(exit);
      });
    });
    hubPid =
      Number(/\[hub\] started at http:\/\/127\.0\.0\.1:\d+ \(pid (\d+)\)/.exec(stdout)?.[1]) || undefined;

    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(
      stdout,
      /P2P over Unix sockets:[\s\S]*\[coder\] found reviewer[\s\S]*\[reviewer\] got from coder[\s\S]*\[coder\] reply from reviewer: ".*\(p2p\)"/,
    );
    assert.match(
      stdout,
      /Hub over HTTP \+ SSE:[\s\S]*\[hub\] started[\s\S]*\[coder\] reply from reviewer: ".*\(hub\)"/,
    );
    assert.match(stdout, /no sockets, registry entries or hub process remain/);
    assert.ok(hubPid, "the demo started its own hub");
    assert.equal(alive(hubPid), false, "the hub process is gone");
    // npm keeps its own compile cache in TMPDIR; everything else there would be the demo's.
    const left = readdirSync(scratch).filter((entry) => entry !== "node-compile-cache");
    assert.deepEqual(left, [], "the scratch dir (registry, sockets, hub files) was removed");
    assert.equal(existsSync(join(home, ".pi")), false, "nothing was written under ~/.pi");
  });
});

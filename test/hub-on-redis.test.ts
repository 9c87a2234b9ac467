/**
 * The hub's behaviour tests again, with every hub on a Redis store
 * (PI_COMS_TEST_HUB_STORE=redis makes the harness give each test world its
 * own redis-server): one backend, so the same guarantees on either store.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "./support/hub-harness.ts";

// hub-acks.test.ts is left out: it counts ack requests per 200 ms window of a client, which
// measures the client's coalescing against the time sends take, not anything the store decides.
const FILES = [
  "hub-messaging.test.ts",
  "hub-limits.test.ts",
  "hub-rate-limit.test.ts",
  "hub-resilience.test.ts",
  "hub-bounds.test.ts",
  "hub-peer-gone.test.ts",
];

/** This process's environment minus the test runner's marker (a nested runner would not run files). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PI_COMS_TEST_HUB_STORE: "redis" };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

// One test per file: each gets its own hang guard, and a failure names its file.
for (const file of FILES) {
  test(`${file} passes on the Redis store`, {
    skip: process.env.PI_COMS_TEST_HUB_STORE === "redis",
    timeout: 300_000,
  }, async () => {
    const child = spawn(process.execPath, ["--test", "--test-concurrency=1", join(ROOT, "test", file)], {
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk) => {
      out += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const summary = /# pass (\d+)[\s\S]*# fail (\d+)/.exec(out);
    assert.equal(
      code,
      0,
      `failures on the Redis store:\n${out
        .split("\n")
        .filter((l) => /not ok|error|expected|actual/.test(l))
        .join("\n")}`,
    );
    assert.ok(summary && Number(summary[1]) > 0 && summary[2] === "0", out.slice(-2000));
  });
}

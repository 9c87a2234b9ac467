#!/usr/bin/env node
/**
 * The suite under load: one CPU burner (a `node -e` busy loop) per core, then
 * the full `npm test` N times in a row (default 3), each run's duration and
 * pass/fail counts printed, the burners stopped at the end (also on Ctrl-C).
 * Exit 0 only when every run passed.
 *
 *   node scripts/burn-check.mjs [runs] [-- test files...]
 *
 * With test files after `--`, each run is `node --test` of those files
 * instead of `npm test` (to check one suite under the same load).
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const files = dash >= 0 ? argv.slice(dash + 1) : [];
const runs = Number(dash === 0 ? 3 : (argv[0] ?? 3));
if (!Number.isInteger(runs) || runs < 1) {
  console.error("usage: node scripts/burn-check.mjs [runs] [-- test files...]");
  process.exit(2);
}

const burners = Array.from({ length: availableParallelism() }, () =>
  spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }),
);
const stopBurners = () => {
  for (const burner of burners) burner.kill("SIGKILL");
};
process.on("exit", stopBurners);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    stopBurners();
    process.exit(130);
  });
}

/** Run once; resolve with its duration and the counts from node:test's summary. */
function runOnce() {
  const [command, args] =
    files.length > 0
      ? [process.execPath, ["--test", "--test-concurrency=2", ...files]]
      : ["npm", ["test", "--silent"]];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    let tail = "";
    const failures = [];
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk).slice(-1_000_000);
    });
    child.on("close", (code) => {
      const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(tail)?.[1] ?? Number.NaN);
      for (const match of tail.matchAll(/^\s*not ok \d+ - (.*)$/gm)) failures.push(match[1]);
      resolve({
        code,
        seconds: (Date.now() - started) / 1000,
        pass: count("pass"),
        fail: count("fail"),
        cancelled: count("cancelled"),
        failures,
      });
    });
  });
}

const results = [];
console.error(
  `burn-check: ${burners.length} burners, ${runs} run(s) of ${files.length ? files.join(" ") : "npm test"}`,
);
for (let i = 1; i <= runs; i++) {
  const result = await runOnce();
  results.push(result);
  console.error(
    `burn-check: run ${i}/${runs}: ${result.seconds.toFixed(1)} s, pass ${result.pass}, fail ${result.fail}, cancelled ${result.cancelled}, exit ${result.code}`,
  );
}
stopBurners();
console.error("burn-check summary:");
for (const [i, r] of results.entries()) {
  console.error(
    `  run ${i + 1}: ${r.seconds.toFixed(1)} s, pass ${r.pass}, fail ${r.fail}, cancelled ${r.cancelled}${r.failures.length ? `; failed: ${r.failures.join(" | ")}` : ""}`,
  );
}
process.exitCode = results.every((r) => r.code === 0) ? 0 : 1;

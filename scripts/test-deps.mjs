/**
 * `npm test` runs this first (`pretest`): the tests drive real programs
 * (redis-server, pi inside tmux, the dashboard in Chromium, openssl for a
 * TLS certificate, script(1) for a terminal, git for pi's git install), and
 * a test never skips for a missing one. What is missing is installed from
 * Debian's packages when this process may do so (root, or passwordless
 * sudo, and apt-get); otherwise it stops with one line naming the command.
 *
 * Exit 0: everything is there. Exit 1: something is missing and was not
 * installed (the line says what to run). `--check` only reports.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const env = process.env;

/** Each program the suite starts, and the Debian package that brings it. */
const NEEDS = [
  { what: "redis-server", pkg: "redis-server", find: () => onPath("redis-server") },
  { what: "tmux", pkg: "tmux", find: () => onPath("tmux") },
  { what: "chromium", pkg: "chromium", find: chromium },
  { what: "openssl", pkg: "openssl", find: () => onPath("openssl") },
  { what: "script", pkg: "bsdutils", find: () => onPath("script") },
  { what: "git", pkg: "git", find: () => onPath("git") },
];

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name) {
  return (env.PATH ?? "").split(delimiter).some((dir) => dir && executable(join(dir, name)));
}

/** The same Chromium the dashboard test launches (test/support/browser.ts). */
function chromium() {
  return executable(env.PI_COMS_TEST_CHROMIUM ?? "/usr/bin/chromium");
}

function missing() {
  return NEEDS.filter((need) => !need.find());
}

/** How this process may run apt-get: directly as root, through passwordless sudo, or not at all. */
function aptRunner() {
  if (!onPath("apt-get")) return undefined;
  if (process.getuid?.() === 0) return [];
  if (onPath("sudo") && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0)
    return ["sudo", "-n"];
  return undefined;
}

function apt(prefix, args) {
  const [command, ...rest] = [...prefix, "apt-get", ...args];
  const result = spawnSync(command, rest, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return result.status === 0;
}

function main() {
  const lacking = missing();
  if (lacking.length === 0) return 0;
  const names = lacking.map((need) => need.what).join(", ");
  const packages = [...new Set(lacking.map((need) => need.pkg))];
  const command = `sudo apt-get install -y ${packages.join(" ")}`;
  const runner = process.argv.includes("--check") ? undefined : aptRunner();
  if (!runner) {
    console.error(`npm test needs ${names}: run \`${command}\` (Debian/Ubuntu), then npm test again`);
    return 1;
  }
  console.error(`pi-coms tests: installing ${packages.join(" ")} (missing: ${names})`);
  const installed = apt(runner, ["update", "-qq"]) && apt(runner, ["install", "-y", "-qq", ...packages]);
  const still = missing();
  if (!installed || still.length > 0) {
    const left = (still.length > 0 ? still : lacking).map((need) => need.what).join(", ");
    console.error(
      `npm test needs ${left}: installing failed; run \`${command}\` by hand, then npm test again`,
    );
    return 1;
  }
  return 0;
}

process.exitCode = main();

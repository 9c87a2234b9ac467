/**
 * `npm install` in a checkout builds dist/ (the script client, the CLI bins
 * and their types). npm also runs this when pi installs a git source, with
 * `--omit=dev`: there is no TypeScript then, and pi needs no dist/ (it loads
 * the plugin from its .ts sources), so the build is skipped, not failed.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve("typescript/bin/tsc");
  require.resolve("@types/node/package.json");
} catch {
  console.log(
    "pi-coms: development dependencies are not installed; dist/ is not built (pi does not need it)",
  );
  process.exit(0);
}
const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
process.exit(build.status ?? 1);

/**
 * What loading the plugin costs: importing plugin/index.ts and running its
 * factory loads no other module of the plugin or the project than the flag
 * table (commands are registered from index.ts), and neither does a session
 * that starts without using coms. Checked by listing every module Node
 * resolves in a fresh process; the time it saves is measured in
 * bench/startup.bench.ts, not here.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

const ROOT = join(import.meta.dirname, "..");

const PROBE = `
import { registerHooks } from "node:module";
const seen = [];
registerHooks({
  resolve(specifier, context, next) {
    const result = next(specifier, context);
    seen.push(result.url);
    return result;
  },
});
const { default: factory } = await import(${JSON.stringify(join(ROOT, "plugin", "index.ts"))});
const handlers = {};
const flags = [];
const commands = [];
const pi = {
  registerFlag: (name) => flags.push(name),
  registerCommand: (name) => commands.push(name),
  on: (event, handler) => (handlers[event] = handler),
  getFlag: () => undefined,
};
factory(pi);
const atLoad = [...seen];
// A session that starts without coms: only the pi version check may load.
const ctx = { ui: { notify: () => {} }, sessionManager: { getEntries: () => [] } };
await handlers.session_start({ type: "session_start", reason: "startup" }, ctx);
console.log(JSON.stringify({ atLoad, atStart: seen.slice(atLoad.length), flags, commands }));
`;

describe("loading the plugin", () => {
  it("registers flags and commands from index.ts and the flag table only; a session without coms loads only the version check", () => {
    const { atLoad, atStart, flags, commands } = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", PROBE], { cwd: ROOT, encoding: "utf8" }),
    ) as { atLoad: string[]; atStart: string[]; flags: string[]; commands: string[] };
    const project = (urls: string[]) =>
      urls
        .filter((url) => url.startsWith("file:") && !url.includes("/node_modules/"))
        .map((url) => url.slice(url.indexOf("/plugin/")));
    assert.deepEqual(project(atLoad), ["/plugin/index.ts", "/plugin/cli-flags.ts"]);
    assert.deepEqual(project(atStart), ["/plugin/pi-version.ts"]);
    assert.deepEqual(commands, ["coms", "coms-net", "create-coms-feature-manager"]);
    assert.deepEqual(flags.sort(), [
      "color",
      "coms",
      "coms-name",
      "coms-net",
      "explicit",
      "project",
      "purpose",
    ]);
  });
});

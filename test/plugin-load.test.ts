/**
 * What loading the plugin costs: importing plugin/index.ts and running its
 * factory must not load the contract, zod, tRPC, node-ipc or a transport
 * (they load when a system starts). Checked by listing every module Node
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
const noop = () => {};
const pi = new Proxy({}, { get: (_t, key) => (key === "getFlag" ? () => undefined : noop) });
factory(pi);
console.log(JSON.stringify(seen));
`;

describe("loading the plugin", () => {
  it("loads no contract, zod, tRPC, node-ipc or transport until a system starts", () => {
    const seen = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", PROBE], { cwd: ROOT, encoding: "utf8" }),
    ) as string[];
    assert.ok(
      seen.some((url) => url.endsWith("/plugin/commands.ts")),
      "the probe sees the plugin's own modules",
    );
    const heavy = seen.filter((url) =>
      /\/node_modules\/(zod|@trpc|node-ipc|superjson)\/|\/(contract|peer|hub)\//.test(url),
    );
    assert.deepEqual(heavy, []);
  });
});

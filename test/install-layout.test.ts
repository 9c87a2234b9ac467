import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { hubCliPath } from "../hub/client/discovery.ts";

// pi loads the plugin's TypeScript itself, but the hub it auto-starts runs under
// plain Node, which will not strip types inside node_modules: an installed
// package must spawn its built CLI.
describe("the hub CLI an installed package spawns", () => {
  const root = mkdtempSync(join(tmpdir(), "pi-coms-layout-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  const moduleIn = (pkg: string) => pathToFileURL(join(pkg, "hub", "client", "discovery.ts")).href;

  it("is the source CLI in a checkout", () => {
    const pkg = join(root, "checkout");
    assert.equal(hubCliPath(moduleIn(pkg)), join(pkg, "hub", "cli.ts"));
  });

  it("is the built CLI inside node_modules", () => {
    const pkg = join(root, "node_modules", "pi-coms");
    mkdirSync(join(pkg, "dist", "hub"), { recursive: true });
    writeFileSync(join(pkg, "dist", "hub", "cli.js"), "");
    assert.equal(hubCliPath(moduleIn(pkg)), join(pkg, "dist", "hub", "cli.js"));
  });

  it("is the CLI beside a built module", () => {
    const url = pathToFileURL(join(root, "dist", "hub", "client", "discovery.js")).href;
    assert.equal(hubCliPath(url), join(root, "dist", "hub", "cli.js"));
  });
});

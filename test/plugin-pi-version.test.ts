/**
 * Which pi pi-coms supports, and the warning on any other. The decision is
 * checked directly; the detection runs in real pi over RPC: pi 1.6.0 loads
 * the plugin without a warning, and the same pi told to report 0.87.1 (its
 * PI_PACKAGE_DIR pointed at a copy of its package.json with that version;
 * pi's VERSION comes from there) gets one warning naming 0.87.1 and the
 * supported range, once, also after /reload.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { satisfies, supportedPiRange, unsupportedPiWarning } from "../plugin/pi-version.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const ROOT = join(import.meta.dirname, "..");
const PLUGIN = join(ROOT, "plugin", "index.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");
const PI_DIR = join(ROOT, "node_modules", "@earendil-works", "pi-coding-agent");
const WARNING = /pi-coms supports pi/;

describe("supported pi versions", () => {
  it("reads the range from package.json's peerDependencies", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    assert.equal(supportedPiRange(), pkg.peerDependencies["@earendil-works/pi-coding-agent"]);
  });

  it("decides by the range", () => {
    const range = ">=1.6.0 <2";
    for (const ok of ["1.6.0", "1.6.3", "1.9.10", "1.7.0-beta.1"])
      assert.equal(satisfies(ok, range), true, ok);
    for (const no of ["0.87.1", "1.5.2", "2.0.0", "10.0.0", "garbage", ""])
      assert.equal(satisfies(no, range), false, no);
    assert.equal(satisfies("0.5.0", ">=1 <2 || >=0.5.0 <0.6"), true);
    assert.equal(unsupportedPiWarning("1.6.0", range), undefined);
    assert.match(
      unsupportedPiWarning("0.87.1", range) ?? "",
      /supports pi >=1\.6\.0 <2, but this is pi 0\.87\.1/,
    );
    assert.match(unsupportedPiWarning(undefined, range) ?? "", /does not report its version/);
  });
});

describe("the version warning in real pi", () => {
  let world: PiWorld;
  let current: PiProcess;
  let old: PiProcess;
  const fakeDir = mkdtempSync(join(tmpdir(), "pi-coms-old-pi-"));

  before(async () => {
    const pkg = JSON.parse(readFileSync(join(PI_DIR, "package.json"), "utf8"));
    writeFileSync(join(fakeDir, "package.json"), JSON.stringify({ ...pkg, version: "0.87.1" }));
    for (const entry of ["dist", "docs", "examples"]) symlinkSync(join(PI_DIR, entry), join(fakeDir, entry));
    world = await createPiWorld({ extensions: [PLUGIN, RELOAD] });
    [current, old] = await Promise.all([
      world.startPi({ name: "current" }),
      world.startPi({ name: "old", env: { PI_PACKAGE_DIR: fakeDir } }),
    ]);
  });
  afterEach((t) => dumpIfFailed(t, current, old));
  after(async () => {
    await world?.close();
    rmSync(fakeDir, { recursive: true, force: true });
  });

  it("pi 1.6.0: no warning", async () => {
    await current.prompt("/coms status");
    assert.deepEqual(
      current.notifications().filter((n) => WARNING.test(n.message)),
      [],
    );
  });

  it("a pi reporting 0.87.1: one warning naming it and the supported range, not repeated on /reload", async () => {
    await old.prompt("/coms status");
    await old.prompt("/harness-reload");
    await old.prompt("/coms status");
    const warnings = old.notifications().filter((n) => WARNING.test(n.message));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]?.notifyType, "warning");
    assert.match(warnings[0]?.message ?? "", /supports pi >=1\.6\.0 <2, but this is pi 0\.87\.1/);
  });
});

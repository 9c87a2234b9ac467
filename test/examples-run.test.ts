/**
 * Every script in examples/ run as users run it (`node examples/x.ts`),
 * against script agents started from examples/script-agent.ts, over P2P and
 * over a real hub. Also every shell or TypeScript example in README.md and
 * docs/: each is marked (test/support/doc-examples.ts), and those marked
 * "runs" run here as written.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { ensureHub, stopHub } from "../hub/client/discovery.ts";
import { Children, finish, isolatedHome } from "./support/cli-runner.ts";
import { allExamples, CHECKED_LANGS, ROOT } from "./support/doc-examples.ts";

const EXAMPLES = resolve(import.meta.dirname, "..", "examples");
const { home, env } = isolatedHome("pi-coms-examples-");

const children = new Children();
let hubProject: string | undefined;

after(async () => {
  children.killAll();
  if (hubProject) await stopHub(hubProject, env).catch(() => {});
  rmSync(home, { recursive: true, force: true });
});

/** Start an example; `ready` resolves once its stdout matched the pattern. */
function example(file: string, args: string[], ready?: RegExp) {
  const child = children.node(join(EXAMPLES, file), args, env, "ignore");
  let signalReady = () => {};
  const isReady = new Promise<void>((r) => {
    signalReady = r;
  });
  const done = finish(child, {
    label: file,
    timeoutMs: 40_000,
    onStdout: (stdout) => {
      if (ready?.test(stdout)) signalReady();
    },
  });
  void done.then(signalReady, signalReady);
  return { child, done, ready: isReady };
}

function registryNames(project: string): string[] {
  try {
    return readdirSync(join(home, "coms", "projects", project, "agents"));
  } catch {
    return [];
  }
}

describe("examples", () => {
  it("ask-reviewer gets the script agent's verdict over P2P", async () => {
    const agent = example(
      "script-agent.ts",
      ["--project", "ex-p2p", "--name", "reviewer", "--max", "1"],
      /listening/,
    );
    await agent.ready;
    const ask = await example("ask-reviewer.ts", ["--project", "ex-p2p", "Please review the login change"])
      .done;
    assert.equal(ask.code, 0, ask.stderr);
    assert.equal(ask.stdout, "reviewer read 5 words: looks good to me.\n");
    assert.match(ask.stderr, /asked reviewer/);
    const served = await agent.done;
    assert.equal(served.code, 0, served.stderr);
    assert.match(served.stdout, /<- ci-review: Please review the login change/);
    assert.deepEqual(registryNames("ex-p2p"), [], "both left the registry");
  });

  it("fan-out gathers replies from three agents, and exits 1 when one of them fails", async () => {
    const agents = ["coder1", "coder2", "coder3"].map((name) =>
      example("script-agent.ts", ["--project", "ex-fan", "--name", name], /listening/),
    );
    await Promise.all(agents.map((a) => a.ready));
    const fan = await example("fan-out.ts", [
      "--project",
      "ex-fan",
      "--to",
      "coder1,coder2,coder3",
      "name it",
    ]).done;
    assert.equal(fan.code, 0, fan.stderr);
    for (const name of ["coder1", "coder2", "coder3"]) {
      assert.match(fan.stdout, new RegExp(`## ${name}\\n${name} read 2 words: looks good to me\\.`));
    }

    const partial = await example("fan-out.ts", [
      "--project",
      "ex-fan",
      "--to",
      "coder1,ghost",
      "FAIL please",
    ]).done;
    assert.equal(partial.code, 1);
    assert.match(partial.stdout, /## coder1: PEER_GONE: the agent failed to answer: asked to fail/);
    assert.match(partial.stdout, /## ghost: failed to send: no agent named ghost/);

    for (const a of agents) a.child.kill("SIGINT");
    for (const a of agents) assert.equal((await a.done).code, 0);
    assert.deepEqual(registryNames("ex-fan"), []);
  });

  it("the same scripts work over the hub with --net", async () => {
    hubProject = "ex-hub";
    await ensureHub({ project: hubProject, env });
    const agent = example(
      "script-agent.ts",
      ["--net", "--project", "ex-hub", "--name", "reviewer", "--max", "1"],
      /listening/,
    );
    await agent.ready;
    const ask = await example("ask-reviewer.ts", ["--net", "--project", "ex-hub", "ship it?"]).done;
    assert.equal(ask.code, 0, ask.stderr);
    assert.equal(ask.stdout, "reviewer read 2 words: looks good to me.\n");
    assert.equal((await agent.done).code, 0);
    assert.equal(await stopHub(hubProject, env), true);
    hubProject = undefined;
  });
});

describe("examples in README.md and docs/", () => {
  const examples = allExamples().filter((e) => CHECKED_LANGS.has(e.lang));

  it("each shell or TypeScript example runs here, names the test that runs it, or says what it needs", () => {
    const wrong: string[] = [];
    for (const { where, mark } of examples) {
      if (mark === "runs" || mark === "needs a real LLM" || mark === "needs other machines") continue;
      const runner = /^runs in (\S+)$/.exec(mark ?? "")?.[1];
      if (runner && existsSync(join(ROOT, runner))) continue;
      wrong.push(`${where}: ${mark === undefined ? "no <!-- example: ... --> mark" : `mark "${mark}"`}`);
    }
    assert.deepEqual(wrong, [], "unmarked or wrongly marked examples");
    assert.ok(examples.some((e) => e.mark === "runs"));
  });

  for (const [i, example] of examples.filter((e) => e.mark === "runs").entries()) {
    it(`${example.where} runs as written`, async () => {
      // At the repository root, as the examples say: relative imports and "pi-coms/client" resolve there.
      const ts = example.lang === "ts" || example.lang === "typescript";
      const file = join(ROOT, `.doc-example-${process.pid}-${i}.${ts ? "ts" : "sh"}`);
      writeFileSync(file, example.code);
      try {
        const child = children.track(
          spawn(ts ? process.execPath : "bash", ts ? [file] : ["-euo", "pipefail", file], {
            cwd: ROOT,
            env,
            stdio: ["ignore", "pipe", "pipe"],
          }),
        );
        const run = await finish(child, { label: example.where, timeoutMs: 40_000 });
        assert.equal(run.code, 0, `${example.where} exited ${run.code}:\n${run.stdout}\n${run.stderr}`);
        if (example.code.includes("looks good"))
          assert.match(run.stdout, /looks good: review the retry logic/);
      } finally {
        rmSync(file, { force: true });
      }
    });
  }
});

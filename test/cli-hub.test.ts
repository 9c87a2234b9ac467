/**
 * The `pi-coms` CLI as a real process against a real hub (started by the
 * CLI itself, detached, found through its discovery file): hub
 * start/status/stop, list/send/get/await with --net across separate
 * invocations, listen --net, --json parsed, and the exit codes for an
 * unknown peer, a timeout, a wrong token and an unreachable hub.
 */
import assert from "node:assert/strict";
import { rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { identityPath } from "../client/hub-session.ts";
import { type ComsClient, connectHub, serve } from "../client/index.ts";
import { pidAlive as alive } from "../lib/process.ts";
import { Children, finish, isolatedHome, type Run, until } from "./support/cli-runner.ts";

const CLI = resolve(import.meta.dirname, "..", "client", "cli.ts");
const PROJECT = "cli-hub";
const { home, env } = isolatedHome("pi-coms-cli-hub-");

const children = new Children();
const clients: ComsClient[] = [];
let hubPid: number | undefined;

function start(args: string[]) {
  const project = args.includes("--project") ? [] : ["--project", PROJECT];
  return children.node(CLI, [...args, ...project], env);
}

function cli(...args: string[]): Promise<Run> {
  const child = start(args);
  const result = finish(child);
  child.stdin?.end();
  return result;
}

let reviewer: ComsClient;
const releases: Array<() => void> = [];

before(async () => {
  const started = await cli("hub", "start", "--json");
  assert.equal(started.code, 0, started.stderr);
  const hub = JSON.parse(started.stdout) as { url: string; pid: number; started: boolean };
  hubPid = hub.pid;
  reviewer = await connectHub({
    project: PROJECT,
    name: "reviewer",
    purpose: "reviews",
    explicit: false,
    env,
  });
  clients.push(reviewer);
  serve(
    reviewer,
    async (message, { signal }) => {
      if (message.prompt.startsWith("slow")) {
        await new Promise<void>((r) => {
          releases.push(r);
          signal.addEventListener("abort", () => r());
        });
      }
      return `reviewed: ${message.prompt}`;
    },
    { concurrency: 4 },
  );
});

after(async () => {
  for (const release of releases) release();
  children.killAll();
  for (const client of clients) await client.close().catch(() => {});
  if (hubPid !== undefined && alive(hubPid)) process.kill(hubPid, "SIGKILL");
  rmSync(home, { recursive: true, force: true });
});

describe("pi-coms over the hub", () => {
  it("hub start is idempotent and hub status reports the running hub", async () => {
    const again = await cli("hub", "start", "--json");
    assert.equal(again.code, 0, again.stderr);
    const hub = JSON.parse(again.stdout) as { url: string; pid: number; started: boolean };
    assert.equal(hub.started, false);
    assert.equal(hub.pid, hubPid);
    assert.match(hub.url, /^http:\/\/127\.0\.0\.1:\d+$/);

    const status = await cli("hub", "status", "--json");
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout), {
      project: PROJECT,
      running: true,
      url: hub.url,
      pid: hubPid,
    });
    const human = await cli("hub", "status");
    assert.match(
      human.stdout,
      new RegExp(`hub for ${PROJECT} at ${hub.url.replace(/\./g, "\\.")} \\(pid ${hubPid}\\)`),
    );
    assert.doesNotMatch(human.stdout + again.stdout + status.stdout, /token/i, "the token is never printed");
  });

  it("lists and sends with --await over the hub", async () => {
    const list = await cli("list", "--net", "--json");
    assert.equal(list.code, 0, list.stderr);
    const names = (JSON.parse(list.stdout) as Array<{ name: string }>).map((a) => a.name);
    assert.deepEqual(names, ["reviewer"], "the CLI's own identity is explicit and not listed");

    const reply = await cli("send", "reviewer", "the hub path", "--await", "--net");
    assert.equal(reply.code, 0, reply.stderr);
    assert.equal(reply.stdout, "reviewed: the hub path\n");
  });

  it("get and await a message sent by an earlier invocation, and only its sender can read it", async () => {
    const sent = await cli("send", "reviewer", "slow but sure", "--net", "--name", "ci-job", "--json");
    assert.equal(sent.code, 0, sent.stderr);
    const msgId = (JSON.parse(sent.stdout) as { ack: { msg_id: string } }).ack.msg_id;
    const file = identityPath(PROJECT, "ci-job", env);
    assert.equal(statSync(file).mode & 0o777, 0o600, "the saved credential is private");

    const pending = await cli("get", msgId, "--net", "--name", "ci-job", "--json");
    assert.equal(pending.code, 0, pending.stderr);
    assert.equal((JSON.parse(pending.stdout) as { outcome: { state: string } }).outcome.state, "pending");

    const early = await cli("await", msgId, "--net", "--name", "ci-job", "--timeout", "300");
    assert.equal(early.code, 4, early.stderr);
    assert.match(early.stderr, /TIMEOUT/);

    const stranger = await cli("get", msgId, "--net", "--name", "someone-else");
    assert.equal(stranger.code, 5, stranger.stderr);
    assert.match(stranger.stderr, /only the sender/);

    await until("the slow message at the reviewer", () => (releases.length > 0 ? true : undefined));
    const waiting = cli("await", msgId, "--net", "--name", "ci-job");
    for (const release of releases.splice(0)) release();
    const done = await waiting;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, "reviewed: slow but sure\n");

    const got = await cli("get", msgId, "--net", "--name", "ci-job");
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, "reviewed: slow but sure\n");
  });

  it("exits 3 for an unknown peer, 5 for a wrong token, 6 for an unreachable hub", async () => {
    const unknown = await cli("send", "ghost", "hello", "--net", "--json");
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.equal((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code, "UNKNOWN_PEER");

    const wrong = "not-the-hub-token-at-all";
    const denied = await cli("list", "--net", "--auth-token", wrong);
    assert.equal(denied.code, 5, denied.stderr);
    assert.match(denied.stderr, /token/);
    assert.doesNotMatch(denied.stderr + denied.stdout, new RegExp(wrong), "the token is not echoed");

    // A port that was free a moment ago: nothing answers there.
    const port = await new Promise<number>((done) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => done(port));
      });
    });
    const unreachable = await cli("list", "--url", `http://127.0.0.1:${port}`, "--auth-token", wrong);
    assert.equal(unreachable.code, 6, unreachable.stderr);
  });

  it("listen --net answers prompts through the hub", async () => {
    const child = start(["listen", "--net", "--name", "shouter", "--exec", "tr a-z A-Z", "--max", "1"]);
    const done = finish(child);
    child.stdin?.end();
    await until("shouter on the hub", async () =>
      (await reviewer.list()).some((a) => a.name === "shouter") ? true : undefined,
    );
    const ack = await reviewer.send({ to: "shouter", prompt: "over the hub" });
    const outcome = await reviewer.await(ack.msg_id, { timeoutMs: 15_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "OVER THE HUB");
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      (await reviewer.list({ include_explicit: true })).some((a) => a.name === "shouter"),
      false,
    );
  });

  it("hub stop shuts it down; then status exits 6 and --net commands cannot reach it", async () => {
    for (const client of clients.splice(0)) await client.close();
    const stopped = await cli("hub", "stop", "--json");
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(JSON.parse(stopped.stdout), { project: PROJECT, stopped: true });
    assert.equal(hubPid !== undefined && alive(hubPid), false, "the hub process is gone");

    const status = await cli("hub", "status", "--json");
    assert.equal(status.code, 6);
    assert.deepEqual(JSON.parse(status.stdout), { project: PROJECT, running: false });
    const again = await cli("hub", "stop");
    assert.equal(again.code, 0);
    assert.match(again.stdout, /no hub was running/);

    const list = await cli("list", "--net");
    assert.equal(list.code, 6, list.stderr);
    assert.match(list.stderr, /no hub found|hub start/);
  });
});

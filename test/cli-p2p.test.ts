/**
 * The `pi-coms` CLI as a real process against real P2P peers (Unix sockets,
 * on-disk registry): every P2P command, --json parsed, exit codes, and
 * `listen` answering from a command and from stdin.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ComsClient, ComsError, connectPeer, type Message, serve } from "../client/index.ts";
import { Children, finish, isolatedHome, type Run, until } from "./support/cli-runner.ts";

const CLI = resolve(import.meta.dirname, "..", "client", "cli.ts");
const PROJECT = "cli-p2p";
const { home, env } = isolatedHome("pi-coms-cli-p2p-");

const children = new Children();
const clients: ComsClient[] = [];

function start(args: string[]) {
  const project = args.includes("--project") ? [] : ["--project", PROJECT];
  return children.node(CLI, [...args, ...project], env);
}

function cli(args: string[], input?: string): Promise<Run> {
  const child = start(args);
  const result = finish(child);
  child.stdin?.end(input ?? "");
  return result;
}

function sockets(): string[] {
  try {
    return readdirSync(join(home, "coms", "run")).filter((f) => f.endsWith(".sock"));
  } catch {
    return [];
  }
}

let reviewer: ComsClient;
let asker: ComsClient;
const seen: Message[] = [];
let release = () => {};

before(async () => {
  reviewer = await connectPeer({
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
      seen.push(message);
      if (message.prompt.startsWith("fail")) throw new Error("cannot review that");
      if (message.prompt.startsWith("reject")) throw new ComsError("BAD_INPUT", "not a reviewable request");
      if (message.prompt.startsWith("slow")) {
        // Held until the test releases it or the agent stops.
        await new Promise<void>((r) => {
          release = r;
          signal.addEventListener("abort", () => r());
        });
      }
      return `reviewed: ${message.prompt}`;
    },
    { concurrency: 4 },
  );
  clients.push(await connectPeer({ project: PROJECT, name: "hidden", explicit: true, env }));
  asker = await connectPeer({ project: PROJECT, name: "asker", env });
  clients.push(asker);
});

after(async () => {
  release();
  children.killAll();
  for (const client of clients) await client.close().catch(() => {});
  rmSync(home, { recursive: true, force: true });
});

describe("pi-coms over P2P", () => {
  it("lists agents as a table and as JSON, explicit ones only with --all", async () => {
    const table = await cli(["list"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME\s+STATUS\s+MODEL/);
    assert.match(table.stdout, /reviewer\s+online/);
    assert.doesNotMatch(table.stdout, /hidden/);

    const json = await cli(["list", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const names = (JSON.parse(json.stdout) as Array<{ name: string }>).map((a) => a.name);
    assert.ok(names.includes("reviewer"));
    assert.ok(!names.includes("hidden"));
    assert.ok(!names.some((n) => n.startsWith("cli")), "the CLI does not list itself");

    const all = JSON.parse((await cli(["list", "--all", "--json"])).stdout) as Array<{
      name: string;
      explicit: boolean;
    }>;
    assert.equal(all.find((a) => a.name === "hidden")?.explicit, true);

    const other = await cli(["list", "--json", "--project", "somewhere-else"]);
    assert.deepEqual(JSON.parse(other.stdout), [], "projects do not see each other");
  });

  it("sends and awaits the reply, as text and as JSON", async () => {
    const text = await cli(["send", "reviewer", "the login module", "--await"]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, "reviewed: the login module\n");
    const drawn = text.stderr.includes("\r") || text.stderr.includes("\u001b[");
    assert.equal(drawn, false, "no spinner when stderr is not a terminal");

    const json = await cli(["send", "reviewer", "the parser", "--await", "--json", "--name", "ci"]);
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout) as {
      ack: { to: string; msg_id: string };
      outcome: { state: string; text: string };
    };
    assert.equal(body.ack.to, "reviewer");
    assert.deepEqual([body.outcome.state, body.outcome.text], ["reply", "reviewed: the parser"]);
    assert.equal(seen.find((m) => m.msg_id === body.ack.msg_id)?.from, "ci");
  });

  it("sends without waiting (prints the msg_id) and reads the prompt from stdin with -", async () => {
    const sent = await cli(["send", "reviewer", "-"], "from stdin\n");
    assert.equal(sent.code, 0, sent.stderr);
    const msgId = sent.stdout.trim();
    assert.match(msgId, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.match(sent.stderr, /accepted by reviewer/);
    const message = await until("the message at the reviewer", () => seen.find((m) => m.msg_id === msgId));
    assert.equal(message.prompt, "from stdin\n");
  });

  it("exits 3 for an unknown peer, 4 on timeout, 6 when the peer fails to answer, 1 for other errors", async () => {
    const unknown = await cli(["send", "ghost", "hello", "--await"]);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /no agent named ghost/);
    const unknownJson = await cli(["send", "ghost", "hello", "--json"]);
    assert.equal(unknownJson.code, 3);
    assert.equal((JSON.parse(unknownJson.stdout) as { error: { code: string } }).error.code, "UNKNOWN_PEER");

    const slow = await cli(["send", "reviewer", "slow one", "--await", "--timeout", "300", "--json"]);
    assert.equal(slow.code, 4, slow.stderr);
    assert.equal((JSON.parse(slow.stdout) as { outcome: { code: string } }).outcome.code, "TIMEOUT");
    release();

    const failed = await cli(["send", "reviewer", "fail this", "--await"]);
    assert.equal(failed.code, 6);
    assert.match(failed.stderr, /PEER_GONE: the agent failed to answer: cannot review that/);
    assert.equal(failed.stdout, "");

    const rejected = await cli(["send", "reviewer", "reject this", "--await", "--json"]);
    assert.equal(rejected.code, 1);
    const outcome = (
      JSON.parse(rejected.stdout) as { outcome: { state: string; code: string; message: string } }
    ).outcome;
    assert.deepEqual(
      [outcome.state, outcome.code, outcome.message],
      ["error", "BAD_INPUT", "not a reviewable request"],
    );
  });

  it("draws a spinner while waiting when stderr is a terminal", async () => {
    const command = [process.execPath, CLI, "send", "reviewer", "slow spin", "--await", "--timeout", "400"]
      .concat(["--project", PROJECT])
      .map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`)
      .join(" ");
    // script(1) gives the CLI a pseudo-terminal; -e returns the CLI's exit code.
    const child = children.track(
      spawn("script", ["-qec", command, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] }),
    );
    const run = await finish(child);
    release();
    assert.equal(run.code, 4, run.stdout + run.stderr);
    assert.match(run.stdout, /\r[|/\\-] waiting for reviewer \(\d+s\)/);
  });

  it("Ctrl-C while waiting exits 130 and leaves the registry", async () => {
    const child = start(["send", "reviewer", "slow, then interrupted", "--await", "--name", "impatient"]);
    const done = finish(child);
    child.stdin?.end();
    await until("the prompt at the reviewer", () =>
      seen.some((m) => m.prompt === "slow, then interrupted") ? true : undefined,
    );
    child.kill("SIGINT");
    const run = await done;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /CANCELLED/);
    assert.equal(
      (await asker.list({ include_explicit: true })).some((a) => a.name === "impatient"),
      false,
    );
    release();
  });

  it("exits 6 when the peer leaves before answering", async () => {
    const leaver = await connectPeer({ project: PROJECT, name: "leaver", env });
    clients.push(leaver);
    leaver.onInbound(() => {
      void leaver.close();
    });
    const gone = await cli(["send", "leaver", "are you there", "--await", "--timeout", "20000"]);
    assert.equal(gone.code, 6, gone.stderr);
    assert.match(gone.stderr, /PEER_GONE/);
  });

  it("listen --exec answers each prompt with the command's stdout", async () => {
    const child = start(["listen", "--name", "upper", "--exec", "tr a-z A-Z", "--max", "2"]);
    const done = finish(child);
    child.stdin?.end();
    await until("upper in the registry", async () =>
      (await asker.list({ include_explicit: true })).find((a) => a.name === "upper") ? true : undefined,
    );
    const listed = (await asker.list()).some((a) => a.name === "upper");
    assert.equal(listed, true, "a listener is visible unless --explicit");
    for (const prompt of ["make me loud", "again"]) {
      const ack = await asker.send({ to: "upper", prompt });
      const outcome = await asker.await(ack.msg_id, { timeoutMs: 15_000 });
      assert.equal(outcome.state === "reply" && outcome.text, prompt.toUpperCase());
    }
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /--- from asker/);
    assert.match(run.stdout, /make me loud/);
    assert.equal(
      (await asker.list({ include_explicit: true })).some((a) => a.name === "upper"),
      false,
    );
  });

  it("listen answers from stdin lines, with JSON events, and a failing command answers with an error", async () => {
    const child = start(["listen", "--name", "typist", "--json", "--explicit"]);
    const done = finish(child);
    await until("typist in the registry", async () =>
      (await asker.list({ include_explicit: true })).find((a) => a.name === "typist") ? true : undefined,
    );
    assert.equal(
      (await asker.list()).some((a) => a.name === "typist"),
      false,
      "--explicit hides it",
    );
    const ack = await asker.send({ to: "typist", prompt: "what is 6*7?" });
    child.stdin?.write("42\n");
    const outcome = await asker.await(ack.msg_id, { timeoutMs: 15_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "42");
    child.stdin?.end();
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    const events = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string });
    assert.deepEqual(
      events.map((e) => e.event),
      ["ready", "message", "settled"],
    );

    const failing = start(["listen", "--name", "broken", "--exec", "exit 3", "--max", "1"]);
    const failed = finish(failing);
    failing.stdin?.end();
    await until("broken in the registry", async () =>
      (await asker.list()).find((a) => a.name === "broken") ? true : undefined,
    );
    const bad = await asker.send({ to: "broken", prompt: "anything" });
    const badOutcome = await asker.await(bad.msg_id, { timeoutMs: 15_000 });
    assert.equal(badOutcome.state, "error");
    assert.match(badOutcome.state === "error" ? badOutcome.message : "", /exited with 3/);
    assert.equal((await failed).code, 0);
  });

  it("listen leaves cleanly on SIGTERM: no registry entry, no socket", async () => {
    const before = sockets().length;
    const child = start(["listen", "--name", "sleepy", "--exec", "cat"]);
    const done = finish(child);
    await until("sleepy in the registry", async () =>
      (await asker.list()).find((a) => a.name === "sleepy") ? true : undefined,
    );
    assert.equal(sockets().length, before + 1);
    child.kill("SIGTERM");
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      (await asker.list({ include_explicit: true })).some((a) => a.name === "sleepy"),
      false,
    );
    assert.equal(sockets().length, before);
  });
});

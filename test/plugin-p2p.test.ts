/**
 * The plugin in real pi processes over P2P: commands, tools driven by a
 * scripted model, reply capture, the pool widget, queueing while busy,
 * abort, the mutual ask, response_schema, and /reload in the middle.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { ChatRequest, ScriptedReply } from "./support/model-server.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const RELOAD = join(import.meta.dirname, "fixtures", "reload-command.ts");
const WIDGET = "pi-coms-pool";

const MSG_ID = /msg_id ([0-9A-HJKMNP-TV-Z]{26})/;

/** The msg_id in the newest send result the model has seen. */
function sentId(req: ChatRequest): string {
  const results = req.toolResults.filter((r) => r.name?.endsWith("_send"));
  const id = MSG_ID.exec(results[results.length - 1]?.text ?? "")?.[1];
  if (!id) throw new Error(`no msg_id in send results: ${JSON.stringify(req.toolResults)}`);
  return id;
}

const call = (name: string, args: Record<string, unknown>): ScriptedReply => ({
  toolCalls: [{ name, arguments: args }],
});
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** The newest assistant message_end whose text matches. */
function assistantText(pi: PiProcess, pattern: RegExp, since = 0) {
  return pi.waitFor(
    (r) =>
      r.type === "message_end" &&
      (r.message as { role?: string }).role === "assistant" &&
      pattern.test(JSON.stringify((r.message as { content?: unknown }).content ?? "")),
    { since, timeoutMs: 40_000, label: `assistant text ${pattern}` },
  );
}

const isPeerPrompt = (req: ChatRequest) => req.lastUserText.includes("<peer-prompt");
const freshText = (req: ChatRequest) => req.newToolResults.map((r) => r.text).join("\n");

describe("plugin over P2P in real pi", () => {
  let world: PiWorld;
  let manager: PiProcess;
  let coder: PiProcess;

  // Fresh peers, model server and directories for every subtest: a turn, a queued peer prompt or a
  // scripted reply one subtest leaves behind can never reach the next one.
  beforeEach(async () => {
    world = await createPiWorld({ extensions: [PLUGIN, RELOAD], env: { PI_COMS_PING_INTERVAL_MS: "500" } });
    [manager, coder] = await Promise.all([
      world.startPi({ name: "manager" }),
      world.startPi({ name: "coder" }),
    ]);
    await Promise.all([
      manager.prompt('/coms start --name manager --purpose "reviews and directs" --color #ff8800'),
      coder.prompt('/coms start --name coder --purpose "implements features"'),
    ]);
  });
  afterEach(async (t) => {
    dumpIfFailed(t, manager, coder);
    await world?.close();
  });

  it("starts, reports status and shows both peers in the pool widget", async () => {
    const lines = await manager.waitForWidget(WIDGET, (l) => l.some((x) => x.includes("coder")));
    assert.ok(
      lines.some((l) => l.includes("you: manager")),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => /coder .*queue \d+ .*online/.test(l)),
      lines.join("\n"),
    );
    const coderLines = await coder.waitForWidget(WIDGET, (l) => l.some((x) => x.includes("● manager")));
    assert.ok(coderLines.some((l) => l.includes("you: coder")));
    const since = manager.mark();
    await manager.prompt("/coms status");
    const notes = manager.notifications({ since }).map((n) => n.message);
    assert.ok(
      notes.some((n) => n.includes("active as manager") && n.includes("coder")),
      notes.join("\n"),
    );
    assert.match(manager.status("pi-coms") ?? "", /coms: manager/);
  });

  it("manager sends and awaits; the coder's final text is the tool result", async () => {
    const server = world.modelServer;
    server.reply(
      "manager",
      call("coms_send", { to: "coder", prompt: "Please review the login module." }),
      (req) => call("coms_await", { msg_id: sentId(req), timeout_ms: 20_000 }),
      (req) => `manager heard: ${freshText(req)}`,
    );
    server.reply("coder", (req) => {
      assert.ok(isPeerPrompt(req), req.lastUserText);
      assert.match(req.lastUserText, /from the peer agent "manager" \(purpose: reviews and directs\)/);
      assert.match(req.lastUserText, /Please review the login module\./);
      return "Login module reviewed: two issues found.";
    });
    const since = manager.mark();
    const { text } = await manager.promptAndWait("ask the coder to review the login module", {
      timeoutMs: 40_000,
    });
    const awaits = manager.toolResults({ since, toolName: "coms_await" });
    assert.equal(awaits.length, 1);
    assert.match(awaits[0]?.text ?? "", /Reply from coder .*\n.*two issues found/);
    assert.match(text, /manager heard: Reply from coder/);
    const sends = manager.toolResults({ since, toolName: "coms_send" });
    assert.match(sends[0]?.text ?? "", /^Sent to coder \(msg_id /);
  });

  it("coms_list shows the peers with their purpose", async () => {
    world.modelServer.reply("manager", call("coms_list", {}), "listed");
    const since = manager.mark();
    await manager.promptAndWait("who is there?");
    const text = manager.toolResults({ since, toolName: "coms_list" })[0]?.text ?? "";
    assert.match(
      text,
      /^1 peer\(s\) on P2P \/coms \(you are manager\):\n- coder: implements features · scripted\/coder/,
    );
  });

  it("rejects bad flags and unknown subcommands with a clear message", async () => {
    const since = manager.mark();
    await manager.prompt("/coms start --color red");
    await manager.prompt("/coms frobnicate");
    await manager.prompt("/coms-net connect --url ftp://x");
    await manager.prompt("/coms start --name again");
    const notes = manager.notifications({ since });
    assert.deepEqual(
      notes.map((n) => n.notifyType),
      ["error", "error", "error", "error"],
    );
    assert.match(notes[0]?.message ?? "", /bad --color "red"/);
    assert.match(notes[1]?.message ?? "", /unknown subcommand "frobnicate"/);
    assert.match(notes[2]?.message ?? "", /only http:\/\/ and https:\/\//);
    assert.match(notes[3]?.message ?? "", /\/coms is already active/);
  });
  it("a busy recipient queues prompts and answers each in one turn with the reply tool", async () => {
    const server = world.modelServer;
    const busy = gate();
    const coderBefore = server.requestsFor("coder").length;
    server.reply("coder", async () => {
      await busy.wait;
      return "user task finished";
    });
    const coderSince = coder.mark();
    await coder.prompt("work on the user's task");
    await server.waitForRequest((r) => r.model === "coder" && r.lastUserText === "work on the user's task");
    server.reply(
      "manager",
      {
        toolCalls: [
          { name: "coms_send", arguments: { to: "coder", prompt: "First question: which branch?" } },
          { name: "coms_send", arguments: { to: "coder", prompt: "Second question: which tests?" } },
        ],
      },
      "both sent",
    );
    const managerSince = manager.mark();
    await manager.promptAndWait("ask the coder two things");
    const ids = manager
      .toolResults({ since: managerSince, toolName: "coms_send" })
      .map((r) => MSG_ID.exec(r.text)?.[1]);
    assert.equal(ids.length, 2);
    assert.equal(server.requestsFor("coder").length, coderBefore + 1, "nothing delivered while busy");

    server.reply(
      "coder",
      (req) => {
        const blocks = [...req.lastUserText.matchAll(/<peer-prompt [^>]*msg_id="([0-9A-Z]{26})"/g)];
        assert.equal(blocks.length, 2, req.lastUserText);
        assert.match(req.lastUserText, /2 prompts from peer agents/);
        return {
          toolCalls: blocks.map((b, i) => ({
            name: "coms_reply",
            arguments: { msg_id: b[1], text: i === 0 ? "Answer one." : "Answer two." },
          })),
        };
      },
      "Both answered.",
    );
    busy.open();
    await assistantText(coder, /Both answered/, coderSince);
    assert.equal(server.requestsFor("coder").length, coderBefore + 3, "one turn for both prompts");

    server.reply(
      "manager",
      { toolCalls: ids.map((id) => ({ name: "coms_await", arguments: { msg_id: id, timeout_ms: 20_000 } })) },
      "collected",
    );
    const since = manager.mark();
    await manager.promptAndWait("collect both replies");
    const texts = manager.toolResults({ since, toolName: "coms_await" }).map((r) => r.text.split("\n")[1]);
    assert.deepEqual(texts.sort(), ["Answer one.", "Answer two."], "each message gets its own answer");
  });

  it("abort (ESC) ends a blocked await with a clear message", async () => {
    const server = world.modelServer;
    const hold = gate();
    server.reply("coder", async () => {
      await hold.wait;
      return "late answer";
    });
    server.reply(
      "manager",
      call("coms_send", { to: "coder", prompt: "Take your time." }),
      (req) => call("coms_await", { msg_id: sentId(req), timeout_ms: 200 }),
      (req) => call("coms_await", { msg_id: sentId(req) }),
    );
    const since = manager.mark();
    await manager.prompt("ask and wait");
    await manager.waitForToolEnd("coms_await", { since });
    assert.match(
      manager.toolResults({ since, toolName: "coms_await" })[0]?.text ?? "",
      /No reply to [0-9A-Z]{26} from coder in time .*still pending: call coms_await again/,
    );
    const second = await manager.waitFor(
      (r) =>
        r.type === "tool_execution_start" &&
        r.toolName === "coms_await" &&
        !("timeout_ms" in (r.args as object)),
      { since },
    );
    await manager.abort();
    const end = await manager.waitForToolEnd("coms_await", { since: manager.records.indexOf(second) });
    const text = manager.toolResults({ since, toolName: "coms_await" })[1]?.text ?? "";
    assert.match(text, /cancelled\. The message is still pending/);
    assert.ok(end);
    await manager.waitForSettled({ since });
    hold.open();
    await assistantText(coder, /late answer/);
  });

  it("two agents asking each other at the same moment do not deadlock", async () => {
    const server = world.modelServer;
    const mutual = (req: ChatRequest): ScriptedReply | string => {
      const me = req.model;
      const other = me === "manager" ? "coder" : "manager";
      const fresh = req.newToolResults;
      const last = fresh[fresh.length - 1];
      if (last?.name === "coms_send") return call("coms_await", { msg_id: sentId(req), timeout_ms: 30_000 });
      if (last?.name === "coms_await" && last.text.startsWith("Stopped waiting")) {
        assert.ok(isPeerPrompt(req), "the peer prompt follows the interrupted await");
        assert.match(req.lastUserText, /the text of your next message is sent back/);
        // The manager answers and keeps waiting in one message; the coder only answers and is reminded later.
        if (me === "manager")
          return {
            text: `${me} answers ${other}`,
            toolCalls: [{ name: "coms_await", arguments: { msg_id: sentId(req) } }],
          };
        return `${me} answers ${other}`;
      }
      if (last?.name === "coms_await" && last.text.startsWith("Reply from")) {
        // The reply and the other's prompt can arrive together; a final message then answers both.
        return isPeerPrompt(req)
          ? `${me} answers ${other}; ${me} done: ${last.text}`
          : `${me} done: ${last.text}`;
      }
      if (req.lastUserText.startsWith("[pi-coms] The peer prompt that interrupted"))
        return call("coms_await", { msg_id: sentId(req), timeout_ms: 30_000 });
      if (isPeerPrompt(req)) return `${me} answers ${other}`;
      if (req.lastUserText.startsWith("mutual"))
        return call("coms_send", { to: other, prompt: `${me} asks ${other}` });
      return undefined as unknown as string;
    };
    server.script = mutual;
    try {
      const [m, c] = [manager.mark(), coder.mark()];
      await Promise.all([manager.prompt("mutual: ask the coder"), coder.prompt("mutual: ask the manager")]);
      const [mDone, cDone] = await Promise.all([
        assistantText(manager, /manager done: Reply from coder/, m),
        assistantText(coder, /coder done: Reply from manager/, c),
      ]);
      await Promise.all([
        manager.waitForSettled({ since: manager.records.indexOf(mDone) }),
        coder.waitForSettled({ since: coder.records.indexOf(cDone) }),
      ]);
      assert.match(JSON.stringify(mDone), /coder answers manager/);
      assert.match(JSON.stringify(cDone), /manager answers coder/);
      const cut = [...manager.toolResults({ since: m }), ...coder.toolResults({ since: c })].filter((r) =>
        r.text.startsWith("Stopped waiting"),
      );
      assert.ok(cut.length >= 1, "at least one await was cut short by the other's prompt");
      assert.ok(
        ![...manager.toolResults({ since: m }), ...coder.toolResults({ since: c })].some((r) =>
          /in time/.test(r.text),
        ),
        "no wait ran into its timeout",
      );
    } finally {
      server.script = undefined;
    }
  });

  it("response_schema: a matching JSON reply carries its value, a mismatch is a SCHEMA_MISMATCH error", async () => {
    const server = world.modelServer;
    const schema = {
      type: "object",
      properties: { approved: { type: "boolean" } },
      required: ["approved"],
      additionalProperties: false,
    };
    const ask = (prompt: string) => [
      call("coms_send", { to: "coder", prompt, response_schema: schema }),
      (req: ChatRequest) => call("coms_await", { msg_id: sentId(req), timeout_ms: 20_000 }),
      "noted",
    ];
    server.reply("coder", (req) => {
      assert.match(req.lastUserText, /must be only a JSON value valid against this JSON Schema/);
      return '```json\n{"approved": true}\n```';
    });
    server.reply("manager", ...ask("Approve the change?"));
    let since = manager.mark();
    await manager.promptAndWait("ask for approval", { timeoutMs: 40_000 });
    const good = manager.toolResults({ since, toolName: "coms_await" })[0];
    assert.match(good?.text ?? "", /^Reply from coder/);
    assert.deepEqual((good?.details as { value?: unknown } | undefined)?.value, { approved: true });

    server.reply("coder", "Sure, looks fine to me.");
    server.reply("manager", ...ask("Approve the other change?"));
    since = manager.mark();
    await manager.promptAndWait("ask for approval again", { timeoutMs: 40_000 });
    const bad = manager.toolResults({ since, toolName: "coms_await" })[0];
    assert.match(bad?.text ?? "", /ended with an error: SCHEMA_MISMATCH: the reply is not JSON/);
  });

  it("/reload keeps the name, the tools and a pending reply", async () => {
    const server = world.modelServer;
    const hold = gate();
    server.reply("coder", async () => {
      await hold.wait;
      return "answer after the reload";
    });
    server.reply(
      "manager",
      call("coms_send", { to: "coder", prompt: "Answer me after my reload." }),
      "sent it",
    );
    let since = manager.mark();
    await manager.promptAndWait("send and do not wait");
    const msgId = MSG_ID.exec(manager.toolResults({ since, toolName: "coms_send" })[0]?.text ?? "")?.[1];
    assert.ok(msgId);

    await manager.prompt("/harness-reload");
    await coder.prompt("/harness-reload");
    since = manager.mark();
    await manager.prompt("/coms status");
    assert.ok(manager.notifications({ since }).some((n) => n.message.includes("active as manager")));

    hold.open();
    await assistantText(coder, /answer after the reload/);
    server.reply("manager", call("coms_await", { msg_id: msgId, timeout_ms: 20_000 }), "got it");
    since = manager.mark();
    await manager.promptAndWait("collect the reply");
    const request = server.requestsFor("manager").at(-2);
    assert.ok(
      request?.tools.some((t) => t.name === "coms_await"),
      "tools still offered after reload",
    );
    assert.ok(!request?.tools.some((t) => t.name === "coms_net_await"), "inactive system offers no tools");
    assert.match(
      manager.toolResults({ since, toolName: "coms_await" })[0]?.text ?? "",
      /answer after the reload/,
    );

    // After the coder's own reload, a new prompt still reaches its agent and the reply comes back.
    server.reply("coder", "still here after reload");
    server.reply(
      "manager",
      call("coms_send", { to: "coder", prompt: "Still there?" }),
      (req) => call("coms_await", { msg_id: sentId(req), timeout_ms: 20_000 }),
      "fine",
    );
    since = manager.mark();
    await manager.promptAndWait("ping the coder", { timeoutMs: 40_000 });
    assert.match(
      manager.toolResults({ since, toolName: "coms_await" })[0]?.text ?? "",
      /still here after reload/,
    );
    const names = server.requestsFor("coder").at(-1)?.lastUserText ?? "";
    assert.match(names, /from the peer agent "manager"/, "same name after reload");
  });

  it("/reload while a peer prompt is queued keeps it and answers it afterwards", async () => {
    const server = world.modelServer;
    const busy = gate();
    server.reply("coder", async () => {
      await busy.wait;
      return "busy work done";
    });
    const coderSince = coder.mark();
    await coder.prompt("a long task");
    await server.waitForRequest((r) => r.model === "coder" && r.lastUserText === "a long task");
    server.reply("manager", call("coms_send", { to: "coder", prompt: "Queued across a reload?" }), "sent");
    let since = manager.mark();
    await manager.promptAndWait("send while the coder is busy");
    const msgId = MSG_ID.exec(manager.toolResults({ since, toolName: "coms_send" })[0]?.text ?? "")?.[1];
    assert.ok(msgId);
    await coder.prompt("/harness-reload");
    server.reply("coder", (req) => {
      assert.match(req.lastUserText, /Queued across a reload\?/);
      return "yes, it survived";
    });
    busy.open();
    await assistantText(coder, /yes, it survived/, coderSince);
    server.reply("manager", call("coms_await", { msg_id: msgId, timeout_ms: 20_000 }), "ok");
    since = manager.mark();
    await manager.promptAndWait("collect");
    assert.match(manager.toolResults({ since, toolName: "coms_await" })[0]?.text ?? "", /yes, it survived/);
  });

  it("/coms stop removes the tools and the peer disappears for the others", async () => {
    await coder.waitForWidget(WIDGET, (l) => l.some((x) => x.includes("● manager")));
    const since = manager.mark();
    await manager.prompt("/coms stop");
    assert.ok(manager.notifications({ since }).some((n) => n.message.startsWith("coms stopped")));
    await coder.waitForWidget(WIDGET, (l) => !l.some((x) => x.includes("● manager")));
    world.modelServer.reply("manager", "no tools needed");
    await manager.promptAndWait("anything");
    const tools =
      world.modelServer
        .requestsFor("manager")
        .at(-1)
        ?.tools.map((t) => t.name) ?? [];
    assert.ok(!tools.some((t) => t.startsWith("coms_")), tools.join(","));
  });
});

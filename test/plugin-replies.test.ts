/**
 * Who receives which answer, in real pi processes over P2P and over the hub:
 * three senders prompt one busy recipient, the prompts reach it in one batch,
 * and each sender gets only the answer to its own prompt (via the reply
 * tool, or on its own turn when the recipient skipped the tool). Also: the
 * name chosen for the session carries over to the other system, messaging
 * yourself is refused on both, and a reply that breaks the response_schema
 * is an error for the sender and a notice for the responder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { type ChatRequest, createGate, type ScriptedReply } from "./support/model-server.ts";
import { createPiWorld, dumpIfFailed, type PiProcess, type PiWorld } from "./support/pi-harness.ts";

const PLUGIN = join(import.meta.dirname, "..", "plugin", "index.ts");
const MSG_ID = /msg_id ([0-9A-HJKMNP-TV-Z]{26})/;
const SENDERS = ["s1", "s2", "s3"] as const;
type Prefix = "coms" | "coms_net";

const call = (name: string, args: Record<string, unknown>): ScriptedReply => ({
  toolCalls: [{ name, arguments: args }],
});
function sentId(req: ChatRequest, tool: string): string {
  const results = req.toolResults.filter((r) => r.name === tool);
  const id = MSG_ID.exec(results[results.length - 1]?.text ?? "")?.[1];
  if (!id) throw new Error(`no msg_id in ${tool} results: ${JSON.stringify(req.toolResults)}`);
  return id;
}
/** The peer prompts in the newest injected message: sender and msg_id of each. */
function peerPrompts(req: ChatRequest): Array<{ from: string; msgId: string }> {
  return [...req.lastUserText.matchAll(/<peer-prompt from="([^"]+)" msg_id="([0-9A-Z]{26})"/g)].map((m) => ({
    from: m[1] as string,
    msgId: m[2] as string,
  }));
}

describe("one answer per sender, in real pi", () => {
  let world: PiWorld;
  let recipient: PiProcess;
  let senders: PiProcess[];

  before(async () => {
    world = await createPiWorld({ extensions: [PLUGIN], env: { PI_COMS_PING_INTERVAL_MS: "500" } });
    [recipient, ...senders] = await Promise.all([
      world.startPi({ name: "recipient" }),
      ...SENDERS.map((name) => world.startPi({ name })),
    ]);
    await recipient.prompt('/coms start --name recipient --purpose "answers questions"');
    await recipient.prompt("/coms-net start", { timeoutMs: 40_000 });
    for (const [i, pi] of senders.entries()) {
      await pi.prompt(`/coms start --name ${SENDERS[i]}`);
      await pi.prompt("/coms-net start", { timeoutMs: 40_000 });
    }
  });
  afterEach(async (t) => {
    dumpIfFailed(t, recipient, ...senders);
    // Each subtest ends with every session idle, so the tail of a turn never meets the next one's prompt.
    await Promise.all([recipient, ...senders].map((pi) => pi.idle()));
  });
  after(async () => {
    await world?.close();
  });

  it("the name typed for one system is used by the other unless given again", async () => {
    const since = recipient.mark();
    await recipient.prompt("/coms-net status");
    await recipient.prompt("/coms status");
    const notes = recipient.notifications({ since }).map((n) => n.message);
    assert.match(notes[0] ?? "", /^coms-net: active as recipient /);
    assert.match(notes[1] ?? "", /^coms \(P2P\): active as recipient /);
    const peers = await senders[0]?.waitForWidget(
      "pi-coms-pool",
      (lines) =>
        lines.some((l) => /coms-net/.test(l)) && lines.filter((l) => l.includes("● recipient")).length === 2,
    );
    assert.ok(peers);
  });

  async function threeSendersOneBusyRecipient(prefix: Prefix): Promise<void> {
    const server = world.modelServer;
    const busy = createGate();
    server.reply("recipient", busy.step("user task finished"));
    const recipientSince = recipient.mark();
    await recipient.prompt("work on the user's task");
    await server.waitForRequest(
      (r) => r.model === "recipient" && r.lastUserText === "work on the user's task",
    );

    const mark = server.mark();
    for (const name of SENDERS) {
      server.reply(
        name,
        call(`${prefix}_send`, { to: "recipient", prompt: `QUESTION-from-${name}` }),
        (req) => call(`${prefix}_await`, { msg_id: sentId(req, `${prefix}_send`), timeout_ms: 60_000 }),
        `${name} is done`,
      );
    }
    const since = senders.map((pi) => pi.mark());
    const asked = senders.map((pi) => pi.promptAndWait("ask the recipient", { timeoutMs: 90_000 }));
    // Every prompt is queued at the busy recipient before it gets to them.
    await Promise.all(
      SENDERS.map((name) =>
        server.waitForRequest(
          (r) => r.model === name && r.newToolResults.some((t) => t.name === `${prefix}_send`),
          { since: mark, timeoutMs: 30_000 },
        ),
      ),
    );

    // One batch of three: s1 and s3 answered with the reply tool, s2 left out; the final text goes to no one.
    server.reply(
      "recipient",
      (req) => {
        const prompts = peerPrompts(req);
        assert.deepEqual(prompts.map((p) => p.from).sort(), [...SENDERS], req.lastUserText);
        assert.match(req.lastUserText, new RegExp(`Call ${prefix}_reply once per msg_id`));
        return {
          toolCalls: prompts
            .filter((p) => p.from !== "s2")
            .map((p) => ({
              name: `${prefix}_reply`,
              arguments: { msg_id: p.msgId, text: `ANSWER-for-${p.from}` },
            })),
        };
      },
      "FINAL-TEXT of the batch turn",
      (req) => {
        const prompts = peerPrompts(req);
        assert.deepEqual(
          prompts.map((p) => p.from),
          ["s2"],
          "the unanswered prompt comes back on its own",
        );
        assert.match(req.lastUserText, /your final message of this turn is sent back to "s2"/);
        // It says why it is back: a model that answered "see above" would send that to s2.
        assert.match(
          req.lastUserText,
          /Asked again: .*did not answer it with \w+_reply, so no answer was delivered to "s2".*Answer it again in full/,
        );
        return "ANSWER-for-s2";
      },
    );
    busy.open();
    await Promise.all(asked);

    for (const [i, name] of SENDERS.entries()) {
      const awaited = senders[i]?.toolResults({ since: since[i], toolName: `${prefix}_await` }) ?? [];
      assert.equal(awaited.length, 1, name);
      const text = awaited[0]?.text ?? "";
      assert.match(text, new RegExp(`^Reply from recipient to [0-9A-Z]{26}:\\nANSWER-for-${name}$`));
      for (const other of SENDERS.filter((s) => s !== name)) assert.ok(!text.includes(other), text);
      assert.ok(!/QUESTION|FINAL-TEXT/.test(text), text);
    }
    const replies = recipient.toolResults({ since: recipientSince, toolName: `${prefix}_reply` });
    assert.deepEqual(replies.map((r) => r.text.replace(/ \(msg_id .*$/, "")).sort(), [
      "Reply sent to s1",
      "Reply sent to s3",
    ]);
    await recipient.waitForSettled({ since: recipientSince });
    // The user is told once that a prompt is asked again, naming whose.
    const notices = recipient
      .notifications({ since: recipientSince })
      .filter((n) => /not answered with the reply tool/.test(n.message));
    assert.equal(notices.length, 1, JSON.stringify(notices));
    assert.match(notices[0]?.message ?? "", /1 peer prompt\(s\) from s2 .*asked again on its own/);
  }

  it("over P2P: three senders, one busy recipient, each gets only its own answer", async () => {
    await threeSendersOneBusyRecipient("coms");
  });

  it("over the hub: three senders, one busy recipient, each gets only its own answer", async () => {
    await threeSendersOneBusyRecipient("coms_net");
  });

  it("messaging yourself is refused with the same error on both systems", async () => {
    const s1 = senders[0] as PiProcess;
    world.modelServer.reply(
      "s1",
      {
        toolCalls: [
          { name: "coms_send", arguments: { to: "s1", prompt: "hello me" } },
          { name: "coms_net_send", arguments: { to: "s1", prompt: "hello me" } },
        ],
      },
      "refused",
    );
    const since = s1.mark();
    await s1.promptAndWait("message yourself");
    const results = s1.toolResults({ since }).filter((r) => r.toolName.endsWith("_send"));
    assert.equal(results.length, 2);
    for (const r of results) {
      assert.equal(r.isError, true, r.toolName);
      assert.match(r.text, /BAD_INPUT: an agent cannot message itself/, r.toolName);
    }
  });

  it("the reply tool checks a response_schema first and sends nothing on a mismatch", async () => {
    const server = world.modelServer;
    const s2 = senders[1] as PiProcess;
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] };
    let msgId = "";
    server.reply(
      "recipient",
      (req) => {
        msgId = peerPrompts(req)[0]?.msgId ?? "";
        return call("coms_reply", { msg_id: msgId, text: "yes it is" });
      },
      () => call("coms_reply", { msg_id: msgId, text: '{"ok": true}' }),
      () => call("coms_reply", { msg_id: msgId, text: '{"ok": false}' }),
      "TEXT after replying, sent to no one",
    );
    server.reply(
      "s2",
      call("coms_send", { to: "recipient", prompt: "Is it ok?", response_schema: schema }),
      (req) => call("coms_await", { msg_id: sentId(req, "coms_send"), timeout_ms: 30_000 }),
      "noted",
    );
    const [since, recipientSince] = [s2.mark(), recipient.mark()];
    await s2.promptAndWait("ask with a schema", { timeoutMs: 60_000 });
    await recipient.waitForSettled({ since: recipientSince });
    const replies = recipient.toolResults({ since: recipientSince, toolName: "coms_reply" });
    assert.deepEqual(
      replies.map((r) => r.isError),
      [true, false, true],
    );
    assert.match(replies[0]?.text ?? "", /SCHEMA_MISMATCH: the reply is not JSON.*Nothing was sent/);
    assert.match(replies[2]?.text ?? "", /no open peer prompt has msg_id .* \(already answered/);
    const awaited = s2.toolResults({ since, toolName: "coms_await" })[0];
    assert.equal(awaited?.isError, false);
    assert.deepEqual((awaited?.details as { value?: unknown } | undefined)?.value, { ok: true });
    assert.ok(!awaited?.text.includes("TEXT after"), awaited?.text);
  });

  for (const prefix of ["coms", "coms_net"] as const) {
    it(`${prefix}: a reply that breaks the response_schema is an error for the sender and a notice for the responder`, async () => {
      const server = world.modelServer;
      const s3 = senders[2] as PiProcess;
      const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] };
      server.reply("recipient", "Sure, all fine.");
      server.reply(
        "s3",
        call(`${prefix}_send`, { to: "recipient", prompt: "Is it ok?", response_schema: schema }),
        (req) => call(`${prefix}_await`, { msg_id: sentId(req, `${prefix}_send`), timeout_ms: 30_000 }),
        "noted",
      );
      const [since, recipientSince] = [s3.mark(), recipient.mark()];
      await s3.promptAndWait("ask with a schema", { timeoutMs: 60_000 });
      const awaited = s3.toolResults({ since, toolName: `${prefix}_await` })[0];
      assert.equal(awaited?.isError, true);
      assert.match(awaited?.text ?? "", /ended with an error: SCHEMA_MISMATCH: the reply is not JSON/);

      const notice = await recipient.waitFor(
        (r) =>
          r.type === "extension_ui_request" &&
          r.method === "notify" &&
          /SCHEMA_MISMATCH/.test(String(r.message)),
        { since: recipientSince, label: "notice to the responder" },
      );
      assert.equal(notice.notifyType, "warning");
      assert.match(String(notice.message), /reply to s3 rejected/);
      // The agent itself reads about it on its next turn.
      server.reply("recipient", "understood");
      await recipient.promptAndWait("anything new?");
      const seen = server.requestsFor("recipient").at(-1)?.transcript ?? "";
      assert.match(seen, /Your reply to "s3" \(msg_id [0-9A-Z]{26}\) was rejected/);
    });
  }
});

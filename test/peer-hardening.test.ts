/**
 * Poison and growth on a P2P node, over real sockets between in-process
 * nodes: a message or reply that cannot be serialized or taken ends with a
 * definite error for its sender while later messages keep flowing, deep
 * response_schemas are refused or handled, and what a node keeps of finished
 * work is bounded by count and by bytes.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Message } from "../contract/schemas.ts";
import { type P2PNode, startP2P } from "../peer/node.ts";
import { Registry } from "../peer/registry.ts";
import { Sandbox } from "./support/p2p-harness.ts";
import { comsCode, RawConnection } from "./support/p2p-raw.ts";

const sandboxes: Sandbox[] = [];
after(async () => {
  await Promise.all(sandboxes.map((box) => box.cleanup()));
});

async function withPair(
  project: string,
  env: NodeJS.ProcessEnv,
  run: (a: P2PNode, b: P2PNode, box: Sandbox) => Promise<void>,
): Promise<void> {
  const box = new Sandbox({ PI_COMS_PING_INTERVAL_MS: "0", ...env });
  sandboxes.push(box);
  const a = await startP2P({ name: "a", project, env: box.env });
  const b = await startP2P({ name: "b", project, env: box.env });
  try {
    await run(a, b, box);
  } finally {
    await a.close();
    await b.close();
  }
}

/** b answers every inbound message with "ok: <prompt>", except what `special` handles. */
function answer(b: P2PNode, special?: (message: Message) => boolean): void {
  b.onInbound((message) => {
    if (special?.(message)) return;
    void b.settle(message.msg_id, { ok: true, text: `ok: ${message.prompt}` });
  });
}

async function roundTrip(a: P2PNode, prompt: string): Promise<void> {
  const ack = await a.send({ to: "b", prompt });
  const outcome = await a.await(ack.msg_id, { timeoutMs: 15_000 });
  assert.equal(outcome.state, "reply", JSON.stringify(outcome));
  assert.equal(outcome.state === "reply" && outcome.text, `ok: ${prompt}`);
}

function nested(depth: number, leaf: unknown = { type: "string" }): Record<string, unknown> {
  let value = leaf as Record<string, unknown>;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe("p2p poison messages", () => {
  it("a deep response_schema (65 to 20,000 levels) is refused with BAD_INPUT; the next message arrives", async () => {
    await withPair("deep", {}, async (a, b) => {
      answer(b);
      for (const depth of [65, 1500, 4000, 5000, 20_000]) {
        await assert.rejects(
          a.send({ to: "b", prompt: `deep ${depth}`, response_schema: nested(depth) }),
          (error: { code?: string }) => error.code === "BAD_INPUT",
        );
        await roundTrip(a, `after ${depth}`);
      }
    });
  });

  it("the same schemas written raw on the wire: each is refused with BAD_INPUT naming the limit, none blocks the inbox", async () => {
    await withPair("deep-raw", {}, async (a, b, box) => {
      const inbound: string[] = [];
      b.onInbound((message) => {
        inbound.push(message.prompt);
        void b.settle(message.msg_id, { ok: true, text: `ok: ${message.prompt}` });
      });
      const self = new Registry("deep-raw", box.env).byName("a");
      assert.ok(self);
      const raw = await RawConnection.open(b.socketPath);
      try {
        raw.request(1, "mutation", "agents.hello", { json: { id: self.id, agent_token: self.token } });
        assert.equal((await raw.next((f) => f.data.id === 1)).data.k, "data");
        let id = 10;
        for (const depth of [65, 1500, 4000, 5000, 20_000]) {
          id++;
          // Written as text: JSON.stringify itself overflows the stack on such a value.
          const schema = `${'{"a":'.repeat(depth)}{"type":"string"}${"}".repeat(depth)}`;
          const input = `{"json":{"to":"b","prompt":"raw deep ${depth}","response_schema":${schema}}}`;
          raw.write(
            `{"type":"coms","data":{"k":"req","id":${id},"type":"mutation","path":"messages.send","input":${input}}}\f`,
          );
          const frame = await raw.next((f) => f.data.id === id, 15_000);
          assert.equal(frame.data.k, "error", `depth ${depth} accepted`);
          assert.equal(comsCode(frame), "BAD_INPUT");
          assert.match(frame.data.error?.json?.message ?? "", /limit (64|256)/);
          await roundTrip(a, `after raw ${depth}`);
        }
        assert.ok(inbound.includes("after raw 20000"));
        assert.ok(!inbound.some((prompt) => prompt.startsWith("raw deep")));
      } finally {
        raw.close();
      }
    });
  });

  it("a reply value nested right at the input bound reaches its sender (answers get a few levels more)", async () => {
    await withPair("deep-value", {}, async (a, b) => {
      // 254 levels: the settle input is then exactly 256 deep; the outcome batch around it is deeper.
      const value = nested(253);
      b.onInbound((message) => void b.settle(message.msg_id, { ok: true, text: "deep", value }));
      const ack = await a.send({ to: "b", prompt: "deep value please" });
      const outcome = await a.await(ack.msg_id, { timeoutMs: 15_000 });
      assert.equal(outcome.state, "reply", JSON.stringify(outcome).slice(0, 300));
      assert.deepEqual(outcome.state === "reply" && outcome.value, value);
    });
  });

  it("a reply whose value cannot be serialized or is too large: that message ends with an error, the others are answered", async () => {
    await withPair("bad-reply", {}, async (a, b) => {
      const held: Message[] = [];
      answer(b, (message) => {
        if (!message.prompt.startsWith("hold")) return false;
        held.push(message);
        return true;
      });
      const poisoned = await a.send({ to: "b", prompt: "hold deep" });
      const huge = await a.send({ to: "b", prompt: "hold huge" });
      const waiting = await a.send({ to: "b", prompt: "hold fine" });
      while (held.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      const [deepMsg, hugeMsg, fineMsg] = held as [Message, Message, Message];
      await assert.rejects(
        b.settle(deepMsg.msg_id, { ok: true, text: "{}", value: nested(5000, 1) }),
        (error: { code?: string; message: string }) =>
          error.code === "BAD_INPUT" && /cannot be serialized/.test(error.message),
      );
      const big = Array.from({ length: 40 }, () => "x".repeat(100_000));
      await assert.rejects(
        b.settle(hugeMsg.msg_id, { ok: true, text: "[]", value: big }),
        (error: { code?: string; message: string }) =>
          error.code === "BAD_INPUT" && /frame limit/.test(error.message),
      );
      await b.settle(fineMsg.msg_id, { ok: true, text: "fine", value: { nested: nested(20, 1) } });
      for (const ack of [poisoned, huge]) {
        const outcome = await a.await(ack.msg_id, { timeoutMs: 15_000 });
        assert.equal(outcome.state === "error" && outcome.code, "BAD_INPUT", JSON.stringify(outcome));
        assert.match(outcome.state === "error" ? outcome.message : "", /reply could not be sent/);
      }
      const fine = await a.await(waiting.msg_id, { timeoutMs: 15_000 });
      assert.equal(fine.state === "reply" && fine.text, "fine");
      await roundTrip(a, "after the poison");
    });
  });

  it("many large replies settled at once reach the sender (outcome batches are cut by size)", async () => {
    await withPair("big-batch", {}, async (a, b) => {
      const held: Message[] = [];
      b.onInbound((message) => held.push(message));
      const acks = await Promise.all(
        Array.from({ length: 12 }, (_, i) => a.send({ to: "b", prompt: `big ${i}` })),
      );
      while (held.length < acks.length) await new Promise((resolve) => setTimeout(resolve, 10));
      const text = "y".repeat(200_000);
      // One synchronous burst: all twelve outcomes are queued before the stream writes any.
      for (const message of held) void b.settle(message.msg_id, { ok: true, text });
      for (const ack of acks) {
        const outcome = await a.await(ack.msg_id, { timeoutMs: 15_000 });
        assert.equal(outcome.state, "reply", JSON.stringify(outcome).slice(0, 300));
        assert.equal(outcome.state === "reply" && outcome.text.length, text.length);
      }
    });
  });

  it("a message no handler can take ends with an error for its sender; the next one arrives", async () => {
    await withPair("throws", {}, async (a, b) => {
      answer(b, (message) => {
        if (message.prompt === "boom") throw new Error("cannot handle this one");
        return false;
      });
      const ack = await a.send({ to: "b", prompt: "boom" });
      const outcome = await a.await(ack.msg_id, { timeoutMs: 15_000 });
      assert.equal(outcome.state === "error" && outcome.code, "BAD_INPUT");
      assert.match(
        outcome.state === "error" ? outcome.message : "",
        /b could not take this message: cannot handle this one/,
      );
      await roundTrip(a, "next");
    });
  });
});

describe("p2p retention limits", () => {
  it("settled messages and final outcomes are bounded by count", async () => {
    await withPair(
      "keep-count",
      { PI_COMS_KEEP_SETTLED: "20", PI_COMS_KEEP_OUTCOMES: "20" },
      async (a, b) => {
        answer(b);
        for (let i = 0; i < 100; i++) await roundTrip(a, `n${i}`);
        const sender = a.retained().outcomes;
        const receiver = b.retained().settled;
        assert.ok(sender.count > 0 && sender.count <= 20, JSON.stringify(sender));
        assert.ok(receiver.count > 0 && receiver.count <= 20, JSON.stringify(receiver));
      },
    );
  });

  it("and by bytes, with the prompts of settled messages dropped", async () => {
    const limit = 1024 * 1024;
    const env = { PI_COMS_KEEP_SETTLED_BYTES: String(limit), PI_COMS_KEEP_OUTCOMES_BYTES: String(limit) };
    await withPair("keep-bytes", env, async (a, b) => {
      answer(b);
      const prompt = (i: number) => `${i} ${"p".repeat(100_000)}`;
      for (let i = 0; i < 40; i++) await roundTrip(a, prompt(i));
      const sender = a.retained().outcomes;
      const receiver = b.retained().settled;
      // Each reply is ~200 KB as UTF-16: forty of them would be ~8 MB.
      assert.ok(sender.bytes > 0 && sender.bytes <= limit, JSON.stringify(sender));
      assert.ok(receiver.bytes > 0 && receiver.bytes <= limit, JSON.stringify(receiver));
      assert.ok(sender.count < 40 && receiver.count < 40);
      const kept = (b as unknown as { inbox: { received: Map<string, { message: Message }> } }).inbox
        .received;
      assert.ok(kept.size > 0);
      for (const { message } of kept.values()) assert.equal(message.prompt, "");
      // The newest outcome is still there for a late get.
      const last = await a.send({ to: "b", prompt: "last" });
      await a.await(last.msg_id, { timeoutMs: 15_000 });
      assert.equal((await a.get(last.msg_id)).state, "reply");
    });
  });

  it("an outcome stream keeps no reference to what it already sent", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const env = { PI_COMS_KEEP_SETTLED: "0", PI_COMS_KEEP_OUTCOMES: "0" };
    await withPair("no-leak", env, async (a, b) => {
      const sent: WeakRef<object>[] = [];
      b.onInbound((message) => {
        const value = { prompt: message.prompt };
        sent.push(new WeakRef(value));
        void b.settle(message.msg_id, { ok: true, text: "{}", value });
      });
      for (let i = 0; i < 30; i++) {
        const ack = await a.send({ to: "b", prompt: `n${i}` });
        await a.await(ack.msg_id, { timeoutMs: 15_000 });
      }
      assert.equal(b.retained().settled.count, 0);
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      // Nothing keeps them once they are forgotten (the latest may still sit in a local of the stream loop).
      const alive = sent.filter((ref) => ref.deref() !== undefined).length;
      assert.ok(alive <= 2, `${alive} of ${sent.length} sent outcomes are still reachable`);
    });
  });

  it("malformed limits are refused at start with the variable's name", async () => {
    const box = new Sandbox({ PI_COMS_KEEP_SETTLED_BYTES: "lots" });
    sandboxes.push(box);
    await assert.rejects(startP2P({ name: "a", project: "bad", env: box.env }), /PI_COMS_KEEP_SETTLED_BYTES/);
  });
});

/**
 * The script API over real P2P peers: scripts join as explicit agents by
 * default, and `serve` settles every inbound message exactly once (replies,
 * thrown errors, response_schema checks), one at a time unless told otherwise.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ComsClient, ComsError, connectPeer, type Outcome, serve } from "../client/index.ts";

const home = mkdtempSync(join(tmpdir(), "pi-coms-client-serve-"));
const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PI_COMS_DIR: join(home, "coms") };
const project = "client-serve";
const clients: ComsClient[] = [];
let asker: ComsClient;

async function join_(name: string, explicit?: boolean): Promise<ComsClient> {
  const client = await connectPeer({ project, name, env, ...(explicit !== undefined && { explicit }) });
  clients.push(client);
  return client;
}

async function ask(to: string, prompt: string, extra: object = {}): Promise<Outcome> {
  const ack = await asker.send({ to, prompt, ...extra });
  return asker.await(ack.msg_id, { timeoutMs: 15_000 });
}

before(async () => {
  asker = await join_("asker");
});

after(async () => {
  for (const client of clients) await client.close().catch(() => {});
  rmSync(home, { recursive: true, force: true });
});

describe("client API", () => {
  it("joins scripts as explicit agents unless asked otherwise", async () => {
    await join_("quiet");
    await join_("loud", false);
    const names = (await asker.list()).map((a) => a.name);
    assert.ok(names.includes("loud"));
    assert.ok(!names.includes("quiet"));
    assert.ok((await asker.list({ include_explicit: true })).some((a) => a.name === "quiet"));
  });

  it("serve settles replies, ComsErrors with their code and other throws as PEER_GONE", async () => {
    const agent = await join_("answerer");
    const serving = serve(agent, (message) => {
      if (message.prompt === "coms") throw new ComsError("HOP_LIMIT", "no further");
      if (message.prompt === "boom") throw new Error("kaput");
      return { text: `got ${message.prompt}`, value: { n: message.prompt.length } };
    });
    const reply = await ask("answerer", "abc");
    assert.deepEqual(reply.state === "reply" && [reply.text, reply.value], ["got abc", { n: 3 }]);
    const coms = await ask("answerer", "coms");
    assert.deepEqual(coms.state === "error" && [coms.code, coms.message], ["HOP_LIMIT", "no further"]);
    const boom = await ask("answerer", "boom");
    assert.deepEqual(boom.state === "error" && [boom.code, boom.message], [
      "PEER_GONE",
      "the agent failed to answer: kaput",
    ]);
    assert.equal(serving.settled, 3);
    await serving.stop();
  });

  it("serve checks replies against a response_schema", async () => {
    const agent = await join_("jsonist");
    const serving = serve(agent, (message) =>
      message.prompt === "good" ? '{"verdict":"approve"}' : "approve",
    );
    const schema = {
      type: "object",
      properties: { verdict: { type: "string", enum: ["approve", "reject"] } },
      required: ["verdict"],
    };
    const good = await ask("jsonist", "good", { response_schema: schema });
    assert.deepEqual(good.state === "reply" && good.value, { verdict: "approve" });
    const bad = await ask("jsonist", "bad", { response_schema: schema });
    assert.equal(bad.state === "error" && bad.code, "SCHEMA_MISMATCH");
    await serving.stop();
  });

  it("serve handles one message at a time by default, more with concurrency, and reports queue depth", async () => {
    for (const concurrency of [1, 3]) {
      const agent = await join_(`worker${concurrency}`);
      let running = 0;
      let peak = 0;
      const depths: number[] = [];
      const original = agent.updateCard.bind(agent);
      agent.updateCard = (patch) => {
        if (patch.queue_depth !== undefined) depths.push(patch.queue_depth);
        original(patch);
      };
      const serving = serve(
        agent,
        async (message) => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 50));
          running--;
          return message.prompt;
        },
        { concurrency },
      );
      const outcomes = await Promise.all(["a", "b", "c"].map((p) => ask(agent.self.name, p)));
      assert.deepEqual(
        outcomes.map((o) => o.state === "reply" && o.text),
        ["a", "b", "c"],
      );
      assert.equal(peak, concurrency);
      assert.ok(Math.max(...depths) >= 2, "queued messages show in the card");
      assert.equal(depths.at(-1), 0);
      await serving.stop();
    }
  });

  it("stop called from onSettled takes effect before the next queued message starts", async () => {
    const agent = await join_("once");
    const started: string[] = [];
    let gate = () => {};
    const opened = new Promise<void>((r) => {
      gate = r;
    });
    const serving = serve(
      agent,
      async (message) => {
        started.push(message.prompt);
        await opened;
        return "done";
      },
      { onSettled: () => void serving.stop() },
    );
    const acks = await Promise.all(["a", "b", "c"].map((prompt) => asker.send({ to: "once", prompt })));
    const deadline = Date.now() + 10_000;
    while (agent.self.queue_depth < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    gate();
    const first = await asker.await(acks[0]?.msg_id ?? "", { timeoutMs: 15_000 });
    assert.equal(first.state, "reply");
    await serving.stop();
    assert.deepEqual(started, ["a"]);
    assert.equal((await asker.get(acks[1]?.msg_id ?? "")).state, "pending");
  });

  it("after stop, queued messages are left to the transport: closing answers them PEER_GONE", async () => {
    const agent = await join_("stopper");
    const started: string[] = [];
    const serving = serve(agent, async (message, { signal }) => {
      started.push(message.prompt);
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
      return `late ${message.prompt}`;
    });
    const first = await asker.send({ to: "stopper", prompt: "one" });
    const second = await asker.send({ to: "stopper", prompt: "two" });
    const deadline = Date.now() + 10_000;
    while (started.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(started, ["one"]);
    // Stopping aborts the running handler; it still settles its message with its own answer.
    await serving.stop();
    assert.deepEqual(started, ["one"], "the queued message was not started");
    const one = await asker.await(first.msg_id, { timeoutMs: 15_000 });
    assert.equal(one.state === "reply" && one.text, "late one");
    assert.equal((await asker.get(second.msg_id)).state, "pending");
    await agent.close();
    const two = await asker.await(second.msg_id, { timeoutMs: 15_000 });
    assert.equal(two.state === "error" && two.code, "PEER_GONE");
  });
});

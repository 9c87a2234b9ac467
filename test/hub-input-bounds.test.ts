/**
 * Nested input is bounded at the door of both hub runtimes: a deep
 * response_schema (or any deep input) is refused with BAD_INPUT naming the
 * limit, never a 500, and the recipient's inbox keeps flowing afterwards.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { echo, HubWorld, type Runtime } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

/** Written as text: JSON.stringify itself overflows the stack on the deepest of these. */
function deepSchema(depth: number): string {
  return `${'{"a":'.repeat(depth)}{"type":"string"}${"}".repeat(depth)}`;
}

function comsCodeOf(body: string): string | undefined {
  const parsed = JSON.parse(body) as {
    error?: { json?: { message?: string; data?: { coms_code?: string } } };
  };
  return parsed.error?.json?.data?.coms_code;
}

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`input bounds on the ${runtime} hub`, () => {
    it("a response_schema 65 to 20,000 deep is refused with BAD_INPUT; the next message arrives", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const b = await world.connect(hub, "b");
      echo(b);
      const a = await rawAgent(hub.url, hub.token, "a");
      const send = (body: string) =>
        fetch(`${hub.url}/trpc/messages.send`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${hub.token}`,
            "content-type": "application/json",
            [AGENT_ID_HEADER]: a.card.id,
            [AGENT_TOKEN_HEADER]: a.agentToken,
          },
          body,
        });
      for (const depth of [65, 1500, 4000, 5000, 20_000]) {
        const response = await send(
          `{"json":{"to":"b","prompt":"deep ${depth}","response_schema":${deepSchema(depth)}}}`,
        );
        const body = await response.text();
        assert.equal(response.status, 400, `depth ${depth}: ${body.slice(0, 300)}`);
        assert.equal(comsCodeOf(body), "BAD_INPUT", body.slice(0, 300));
        assert.match(body, /limit (64|256)/, body.slice(0, 300));
        const ack = await a.client.messages.send.mutate({ to: "b", prompt: `after ${depth}` });
        const outcome = await a.client.messages.get.query({ msg_id: ack.msg_id });
        assert.ok(outcome);
        const tx = await world.connect(hub, `tx${depth}`);
        const sent = await tx.send({ to: "b", prompt: `typed after ${depth}` });
        const reply = await tx.await(sent.msg_id, { timeoutMs: 15_000 });
        assert.equal(
          reply.state === "reply" && reply.text,
          `re: typed after ${depth}`,
          JSON.stringify(reply),
        );
      }
      // Wide instead of deep: more than 100,000 values in one schema.
      const wide = await send(
        `{"json":{"to":"b","prompt":"wide","response_schema":{"enum":[${Array(100_001).fill("0").join(",")}]}}}`,
      );
      const wideBody = await wide.text();
      assert.equal(wide.status, 400, wideBody.slice(0, 300));
      assert.match(wideBody, /more than 100000 values/);
      // Within the limits a schema is accepted and delivered as usual.
      const response = await send(
        `{"json":{"to":"b","prompt":"deep 60","response_schema":${deepSchema(60)}}}`,
      );
      assert.equal(response.status, 200, await response.text());
    });

    it("any input nested past 256 levels is refused with BAD_INPUT, not a 500", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      for (const depth of [300, 20_000]) {
        const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
        const response = await fetch(`${hub.url}/trpc/agents.register`, {
          method: "POST",
          headers: { authorization: `Bearer ${hub.token}`, "content-type": "application/json" },
          body: `{"json":{"name":"x","purpose":${nested}}}`,
        });
        const body = await response.text();
        assert.equal(response.status, 400, body.slice(0, 300));
        assert.equal(comsCodeOf(body), "BAD_INPUT");
        assert.match(body, /limit 256/);
      }
    });

    it("a reply value nested right at the input bound reaches its sender", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const b = await world.connect(hub, "b");
      // 254 levels: the settle input is then exactly 256 deep; the inbox event around it is deeper.
      let value: Record<string, unknown> = { type: "string" };
      for (let i = 0; i < 253; i++) value = { a: value };
      b.onInbound((message) => void b.settle(message.msg_id, { ok: true, text: "deep", value }));
      const a = await world.connect(hub, "a");
      const ack = await a.send({ to: "b", prompt: "deep value please" });
      const outcome = await a.await(ack.msg_id, { timeoutMs: 15_000 });
      assert.equal(outcome.state, "reply", JSON.stringify(outcome).slice(0, 300));
      assert.deepEqual(outcome.state === "reply" && outcome.value, value);
    });

    it("a typed client is told BAD_INPUT for a deep schema (no stack overflow on its side either)", async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const b = await world.connect(hub, "b");
      echo(b);
      const a = await world.connect(hub, "a");
      let schema: Record<string, unknown> = { type: "string" };
      for (let i = 0; i < 5000; i++) schema = { a: schema };
      await assert.rejects(
        a.send({ to: "b", prompt: "deep", response_schema: schema }),
        (error: { code?: string }) => {
          assert.equal(error.code, "BAD_INPUT");
          return true;
        },
      );
      const ack = await a.send({ to: "b", prompt: "then this" });
      const reply = await a.await(ack.msg_id, { timeoutMs: 15_000 });
      assert.equal(reply.state === "reply" && reply.text, "re: then this");
    });
  });
}

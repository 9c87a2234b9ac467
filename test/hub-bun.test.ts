import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { HubClient } from "../hub/client/hub-client.ts";
import { BUN, echo, type HubProcess, HubWorld, kill9, ROOT, raw, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

describe("the hub under Bun (core cases)", () => {
  let world: HubWorld;
  let hub: HubProcess;
  const connect = (name: string) => world.connect(hub, name);

  before(async () => {
    world = new HubWorld();
    hub = await world.startHub({ project: "bunproj", runtime: "bun" });
  });
  after(() => world.dispose());

  it("runs under Bun with the SQLite store and answers /healthz", async () => {
    assert.match(hub.output(), /\(bun, sqlite store\)/);
    assert.equal((await raw(hub.url, "/healthz")).status, 200);
  });

  it("two agents exchange messages; ten more each talk to the next", async () => {
    const a = await connect("a");
    const b = await connect("b");
    echo(b);
    const ack = await a.send({ to: "b", prompt: "over bun" });
    const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
    assert.equal(outcome.state === "reply" && outcome.text, "re: over bun");
    const ring = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(`r${i}`)));
    for (const client of ring) echo(client);
    const acks = await Promise.all(
      ring.map((client, i) => client.send({ to: `r${(i + 1) % 10}`, prompt: `${i}` })),
    );
    const outcomes = await Promise.all(
      acks.map((ack, i) => (ring[i] as HubClient).await(ack.msg_id, { timeoutMs: 15_000 })),
    );
    assert.ok(
      outcomes.every((o) => o.state === "reply"),
      JSON.stringify(outcomes),
    );
  });

  it("refuses wrong and missing tokens, and bad input, and stays up", async () => {
    const body = JSON.stringify({ json: { name: "intruder" } });
    assert.equal((await raw(hub.url, "/trpc/agents.register", { body })).status, 401);
    assert.equal(
      (await raw(hub.url, "/trpc/agents.register", { body, token: "wrong-token-0123456789" })).status,
      401,
    );
    assert.equal(
      (await raw(hub.url, "/trpc/agents.register", { body: "{oops", token: hub.token })).status,
      400,
    );
    assert.equal((await raw(hub.url, "/trpc/nope", { body: "{}", token: hub.token })).status, 404);
    const probe = await rawAgent(hub.url, hub.token, "probe");
    const names = (await probe.client.agents.list.query({ include_explicit: true })).map((c) => c.name);
    assert.ok(!names.includes("intruder"));
  });

  it("kill -9 and restart under Bun loses no accepted message", async () => {
    const ghost = await rawAgent(hub.url, hub.token, "ghost");
    const tx = await connect("tx");
    const queued: string[] = [];
    for (let i = 0; i < 15; i++) queued.push((await tx.send({ to: "ghost", prompt: `m${i}` })).msg_id);
    const port = hub.port;
    await kill9(hub);
    hub = await world.startHub({ project: "bunproj", runtime: "bun", args: ["--port", String(port)] });
    const received: string[] = [];
    const sub = ghost.client.messages.inbox.subscribe(
      { lastEventId: null },
      {
        onData: ({ data }) => {
          if (data.kind === "message") received.push(data.message.msg_id);
        },
      },
    );
    world.defer(() => sub.unsubscribe());
    await waitFor(() => received.length === 15, { what: "the 15 queued messages" });
    assert.deepEqual(received, queued);
  });

  it("a client running under Bun talks to a client running under Node", async () => {
    const env = { ...world.env, PI_COMS_NET_SERVER_URL: hub.url, PI_COMS_NET_AUTH_TOKEN: hub.token };
    const node = await connect("node-side");
    echo(node);
    const { code, out } = await world.run(
      BUN,
      [join(ROOT, "test/support/hub-echo-client.ts"), "bun-side", "node-side", "from bun"],
      env,
    );
    assert.equal(code, 0, out);
    const result = JSON.parse(out) as { self: string; outcome: { state: string; text?: string } };
    assert.equal(result.self, "bun-side");
    assert.equal(result.outcome.text, "re: from bun");
  });
});

/** Receiver acks are coalesced: spread traffic costs a few ack requests, not one per message; none is lost. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Message } from "../contract/schemas.ts";
import { ACK_WINDOW_MS } from "../hub/client/ack-batcher.ts";
import { connectHub } from "../hub/client/hub-client.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { CuttableProxy } from "./support/hub-proxy.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

describe("coalesced acks", () => {
  const world = new HubWorld();
  after(() => world.dispose());

  it("acks spread traffic in a few requests and every message ends up delivered", async () => {
    const hub = await world.startHub({ project: "acks", args: ["--max-sends-per-sec", "0"] });
    const proxy = await CuttableProxy.start(hub.port);
    world.defer(() => proxy.close());
    const receiver = await connectHub({
      url: proxy.url,
      token: hub.token,
      project: "acks",
      name: "rx",
      env: world.env,
    });
    world.defer(() => receiver.close());
    const got: Message[] = [];
    receiver.onInbound((message) => got.push(message));
    const sender = await rawAgent(hub.url, hub.token, "tx");
    const count = 60;
    const ids: string[] = [];
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      ids.push((await sender.client.messages.send.mutate({ to: "rx", prompt: `n${i}` })).msg_id);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await waitFor(() => got.length === count, { what: "every message" });
    const spanMs = performance.now() - started;
    await waitFor(
      async () => {
        const outcomes = await Promise.all(ids.map((msg_id) => sender.client.messages.get.query({ msg_id })));
        return outcomes.every((o) => o.state === "pending" && o.delivered);
      },
      { what: "every message acked", timeoutMs: 10_000 },
    );
    const acks = proxy.requests.filter((line) => line.includes("messages.ack")).length;
    // The batcher's promise: at most one ack call per window while traffic lasts (plus the one that
    // closes it), whatever the machine's load stretches that span to; one per message would be 60.
    const bound = Math.min(count - 1, Math.ceil(spanMs / ACK_WINDOW_MS) + 2);
    assert.ok(
      acks > 0 && acks <= bound,
      `${acks} ack requests for ${count} messages over ${Math.round(spanMs)} ms`,
    );
    assert.equal(new Set(got.map((m) => m.msg_id)).size, count, "each handed out once");
  });
});

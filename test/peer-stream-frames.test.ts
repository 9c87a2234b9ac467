/**
 * How stream values share the socket with call answers (one call at a time
 * is the common case, and every write and wake-up is on its path): the peer
 * holds an outcome batch until it has polled for more input, so it leaves
 * in the same write as the next ack; the sender hands a call its answer
 * before the stream values read in the same chunk.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, Socket } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FRAME_EVENT } from "../contract/frames.ts";
import { IpcChannel } from "../peer/link.ts";
import { startP2P } from "../peer/node.ts";
import { Sandbox, until } from "./support/p2p-harness.ts";

const boxes: Sandbox[] = [];
after(async () => {
  await Promise.all(boxes.map((box) => box.cleanup()));
});

/** Every string written to any socket of this process while `run` runs (an observer only). */
async function writesDuring(run: () => Promise<void>): Promise<string[]> {
  const writes: string[] = [];
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (typeof chunk === "string") writes.push(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  try {
    await run();
  } finally {
    Socket.prototype.write = write;
  }
  return writes;
}

describe("stream frames and call answers", () => {
  it("an outcome ready when the next request arrives leaves in the same write as its ack", async () => {
    const box = new Sandbox();
    boxes.push(box);
    const sender = await startP2P({ name: "sender", project: "frames", env: box.env });
    const target = await startP2P({ name: "target", project: "frames", env: box.env });
    const inbound: string[] = [];
    target.onInbound((message) => inbound.push(message.msg_id));
    try {
      const first = await sender.send({ to: "target", prompt: "first" });
      await until(
        async () => {
          const outcome = await sender.get(first.msg_id);
          return outcome.state === "pending" && outcome.delivered;
        },
        10_000,
        "the delivered state of the first message",
      );
      let second = "";
      const writes = await writesDuring(async () => {
        // The request is written on this tick's flush; the reply to the first message is
        // settled in the same turn, before the target has read that request.
        const pending = sender.send({ to: "target", prompt: "second" });
        await target.settle(first.msg_id, { ok: true, text: "one" });
        second = (await pending).msg_id;
        const outcome = await sender.await(first.msg_id, { timeoutMs: 10_000 });
        assert.equal(outcome.state === "reply" && outcome.text, "one");
      });
      const together = writes.filter((chunk) => chunk.includes('"one"') && chunk.includes(second));
      assert.equal(together.length, 1, `outcome and ack in separate writes: ${JSON.stringify(writes)}`);

      // With nothing else to ride with, an outcome still leaves on its own.
      await until(async () => inbound.includes(second), 10_000, "the second message delivered");
      await target.settle(second, { ok: true, text: "two" });
      const alone = await sender.await(second, { timeoutMs: 10_000 });
      assert.equal(alone.state === "reply" && alone.text, "two");
    } finally {
      await sender.close();
      await target.close();
    }
  });

  it("a call's answer is handed over before stream values read in the same chunk", async () => {
    const box = new Sandbox();
    boxes.push(box);
    const path = join(box.dir, "s.sock");
    const order: string[] = [];
    const server = createServer((socket) => {
      socket.setEncoding("utf8");
      let buffer = "";
      socket.on("data", (chunk: string) => {
        buffer += chunk;
        const ids: number[] = [];
        for (let end = buffer.indexOf("\f"); end !== -1; end = buffer.indexOf("\f")) {
          ids.push((JSON.parse(buffer.slice(0, end)) as { data: { id: number } }).data.id);
          buffer = buffer.slice(end + 1);
        }
        if (ids.length < 2) return;
        const frame = (data: unknown) => `${JSON.stringify({ type: FRAME_EVENT, data })}\f`;
        // One chunk: the stream's value first, then the mutation's answer.
        socket.write(
          frame({ k: "started", id: ids[0] }) +
            frame({ k: "data", id: ids[0], data: { json: "stream value" } }) +
            frame({ k: "data", id: ids[1], data: { json: "answer" } }),
        );
      });
    });
    server.listen(path);
    await once(server, "listening");
    const channel = new IpcChannel({ socketPath: path });
    try {
      const streamed = new Promise<void>((resolve) => {
        channel.call(
          "subscription",
          "messages.outcomes",
          { after: 0 },
          {
            data: () => {
              order.push("stream");
              resolve();
            },
            error: () => {},
          },
        );
      });
      const answered = channel.request("agents.card", undefined, "query").then(() => order.push("answer"));
      await Promise.all([streamed, answered]);
      assert.deepEqual(order, ["answer", "stream"]);
    } finally {
      channel.close();
      server.close();
    }
  });
});

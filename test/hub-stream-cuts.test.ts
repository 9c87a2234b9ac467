/**
 * The recipient's inbox stream cut by a TCP proxy at every kind of place in
 * an event (inside `data:`, right after the `id:` line, between events…),
 * then cut every few KB over thousands of messages: every accepted message
 * reaches the recipient exactly once and in order, and none is left pending.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../contract/schemas.ts";
import type { HubClient } from "../hub/client/hub-client.ts";
import { type HubProcess, HubWorld, waitFor } from "./support/hub-harness.ts";
import { type CutMode, type CutRule, SseCutProxy } from "./support/sse-cut-proxy.ts";

/** Places in one `data: …\nid: …\n\n\n` frame (the hub's framing) to cut at. */
const BOUNDARIES = [
  "before the event",
  "inside data",
  "after the data line",
  "inside the id line",
  "after the id line",
  "after the blank line",
  "after the event",
] as const;
type Boundary = (typeof BOUNDARIES)[number];

/** Cut the first frame whose data contains `marker`, at `where` in it. */
function cutFrame(marker: string, where: Boundary): CutRule {
  let done = false;
  return (events) => {
    if (done) return -1;
    const at = events.indexOf(marker);
    if (at === -1) return -1;
    const previous = events.lastIndexOf("\n\n\n", at);
    const start = previous === -1 ? 0 : previous + 3;
    const end = events.indexOf("\n\n\n", at);
    if (end === -1) return -1;
    const frame = events.subarray(start, end + 3).toString("latin1");
    assert.match(frame, /^data: .*\nid: \S+\n\n\n$/s, "a tracked event as the hub frames it");
    const dataLine = frame.indexOf("\n") + 1;
    const idLine = frame.indexOf("\n", dataLine) + 1;
    done = true;
    const offset: Record<Boundary, number> = {
      "before the event": 0,
      "inside data": Math.floor(dataLine / 2),
      "after the data line": dataLine,
      "inside the id line": dataLine + 5,
      "after the id line": idLine,
      "after the blank line": idLine + 1,
      "after the event": frame.length,
    };
    return start + offset[where];
  };
}

/** Cut every stream after a pseudo-random 1.2–4 KB of events (seeded, so a failure replays). */
function cutEvery(seed: number, min: number, max: number): CutRule {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const limits: number[] = [];
  return (events, stream) => {
    limits[stream] ??= min + Math.floor(random() * (max - min));
    const limit = limits[stream] as number;
    return events.length >= limit ? limit : -1;
  };
}

/**
 * The recipient's view: what its app was handed, in order, and its settle
 * calls (a message counts as got when it is handed over, before its reply has
 * reached the hub, so a check of the hub's side waits for these first).
 */
function recorder(client: HubClient) {
  const got: string[] = [];
  /** Each settle call's end: "ok" or why it was refused. */
  const settles: Promise<string>[] = [];
  client.onInbound((message: Message) => {
    got.push(message.prompt);
    settles.push(
      client.settle(message.msg_id, { ok: true, text: "ok" }).then(
        () => "ok",
        (error: unknown) => `${message.prompt.slice(0, 8)}: ${String(error)}`,
      ),
    );
  });
  return { got, settles };
}

/** Hub event ids (epoch.seq) in each relayed stream never go down (a peers event repeats the latest id). */
function assertIdsRise(proxy: SseCutProxy): void {
  for (const [n, stream] of proxy.relayed.entries()) {
    const seqs = [...stream.toString("latin1").matchAll(/^id: [^.\n]*\.(\d+)\n/gm)].map((m) => Number(m[1]));
    for (let i = 1; i < seqs.length; i++) {
      assert.ok(
        (seqs[i] as number) >= (seqs[i - 1] as number),
        `stream ${n}: ids ${seqs.slice(Math.max(0, i - 3), i + 3).join(",")} at ${i}`,
      );
    }
  }
}

describe("inbox streams cut anywhere", () => {
  let world: HubWorld;
  let hub: HubProcess;
  let bunHub: HubProcess;
  before(async () => {
    world = new HubWorld();
    [hub, bunHub] = await Promise.all([world.startHub(), world.startHub({ project: "bun", runtime: "bun" })]);
  });
  after(() => world.dispose());

  for (const [runtime, mode] of [
    ["node", "end"],
    ["node", "reset"],
    ["bun", "end"],
  ] as Array<["node" | "bun", CutMode]>) {
    it(`a cut (${mode}) at every boundary of an event loses nothing and repeats nothing (${runtime} hub)`, async () => {
      const target = runtime === "bun" ? bunHub : hub;
      const proxy = await SseCutProxy.start(target.port);
      world.defer(() => proxy.close());
      proxy.mode = mode;
      const rx = await world.connect(target, { name: `rx-${mode}`, url: proxy.url });
      const { got } = recorder(rx);
      const tx = await world.connect(target, `tx-${mode}`);
      const expected: string[] = [];
      const sent: string[] = [];
      for (const where of BOUNDARIES) {
        const marker = `cut ${where}`;
        const cuts = proxy.cuts;
        proxy.rule = cutFrame(marker, where);
        sent.push((await tx.send({ to: rx.self.name, prompt: marker })).msg_id);
        expected.push(marker);
        await waitFor(() => proxy.cuts > cuts, { what: `the cut ${where}` });
        // A later message must not carry the stream past the cut one.
        sent.push((await tx.send({ to: rx.self.name, prompt: `next ${where}` })).msg_id);
        expected.push(`next ${where}`);
        await waitFor(() => got.length >= expected.length, {
          what: `both messages after a cut ${where} (got ${JSON.stringify(got.slice(-3))})`,
          timeoutMs: 5_000,
        });
      }
      assert.deepEqual(got, expected);
      assertIdsRise(proxy);
      // A cut is not a crash: every message got its reply, none ended PEER_GONE.
      const outcomes = await Promise.all(sent.map((id) => tx.await(id, { timeoutMs: 10_000 })));
      assert.deepEqual(
        outcomes.map((o) => (o.state === "error" ? o.code : o.state)),
        sent.map(() => "reply"),
      );
    });
  }

  it("cut every 1.2–4 KB over 2,000 messages: none lost, none twice, all in order, none left pending", async () => {
    const proxy = await SseCutProxy.start(hub.port);
    world.defer(() => proxy.close());
    proxy.rule = cutEvery(Number(process.env.CUT_SEED ?? 20261201), 1200, 4000);
    let flip = 0;
    proxy.mode = () => (flip++ % 2 === 0 ? "reset" : "end");
    const rx = await world.connect(hub, { name: "rx-run", url: proxy.url });
    const { got, settles } = recorder(rx);
    const tx = await world.connect(hub, "tx-run");
    const total = 2_000;
    const sent: string[] = [];
    for (let i = 0; i < total; i++) {
      const prompt = `m${i} ${"x".repeat(40 + ((i * 37) % 160))}`;
      const ack = await tx.send({ to: rx.self.name, prompt });
      sent.push(ack.msg_id);
    }
    await waitFor(() => got.length >= total, {
      what: `all ${total} messages (have ${got.length})`,
      timeoutMs: 20_000,
    }).catch(() => undefined);
    const index = got.map((prompt) => Number(/^m(\d+)/.exec(prompt)?.[1]));
    const seen = new Set(index);
    const lost = [...Array(total).keys()].filter((i) => !seen.has(i));
    const duplicated = index.length - seen.size;
    let outOfOrder = 0;
    for (let i = 1; i < index.length; i++) if ((index[i] as number) < (index[i - 1] as number)) outOfOrder++;
    assert.deepEqual({ lost, duplicated, outOfOrder }, { lost: [], duplicated: 0, outOfOrder: 0 });
    assert.ok(proxy.cuts >= 100, `cut ${proxy.cuts} times`);
    assertIdsRise(proxy);
    // Every reply the recipient sent was taken (none refused or lost to a cut)…
    assert.deepEqual(
      (await Promise.all(settles)).filter((end) => end !== "ok"),
      [],
    );
    // …and reached the sender: nothing sits pending on the hub.
    const pending: string[] = [];
    for (let i = 0; i < sent.length; i += 100) {
      const outcomes = await Promise.all(sent.slice(i, i + 100).map((id) => tx.get(id)));
      for (const outcome of outcomes) if (outcome.state !== "reply") pending.push(outcome.msg_id);
    }
    assert.deepEqual(pending, []);
  });
});

/**
 * Messages between real peers in separate processes: send/get/await round
 * trips, replies and errors, idempotent msg_ids, hop limit, timeout,
 * AbortSignal, a recipient that leaves, and the link reconnecting to a peer
 * whose socket comes back.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createTRPCClient, getUntypedClient, type TRPCClient } from "@trpc/client";
import { toComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { ComsBackend, ComsRouter } from "../contract/router.ts";
import { MAX_TEXT_LENGTH } from "../contract/schemas.ts";
import { IpcChannel, ipcLink, type RawCall } from "../peer/link.ts";
import { type P2PNode, startP2P } from "../peer/node.ts";
import { startPeerServer } from "../peer/server.ts";
import { Sandbox, until } from "./support/p2p-harness.ts";

type Outcome = {
  state: string;
  msg_id: string;
  text?: string;
  code?: string;
  message?: string;
  delivered?: boolean;
  from?: string;
};
type Ack = { msg_id: string; to: string; to_id: string; queue_depth: number };
type Inbound = {
  msg_id: string;
  prompt: string;
  from: string;
  from_id: string;
  hops: number;
  conversation_id?: string;
};

const sandboxes: Sandbox[] = [];
function sandbox(env: NodeJS.ProcessEnv = {}): Sandbox {
  const box = new Sandbox(env);
  sandboxes.push(box);
  return box;
}
after(async () => {
  await Promise.all(sandboxes.map((box) => box.cleanup()));
});

/** Two in-process nodes, a and b, in their own sandbox; both closed afterwards. */
async function withPair(project: string, run: (a: P2PNode, b: P2PNode) => Promise<void>): Promise<void> {
  const box = sandbox();
  const a = await startP2P({ name: "a", project, env: box.env });
  const b = await startP2P({ name: "b", project, env: box.env });
  try {
    await run(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

function untilDelivered(node: P2PNode, msgId: string) {
  return until(
    async () => {
      const outcome = await node.get(msgId);
      return outcome.state === "pending" && outcome.delivered;
    },
    10_000,
    "the delivered state over the outcome stream",
  );
}

/** Drop the node's connections to its peers; the peers stay up. */
function dropLinks(node: P2PNode): void {
  const peers = (node as unknown as { peers: Map<string, { channel: IpcChannel }> }).peers;
  for (const peer of peers.values()) peer.channel.reset("dropped by the test");
}

describe("p2p messaging", () => {
  it("send → get → settle → await, with the sender identity bound by the handshake", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "manager", project: "m" });
    const b = await box.peer({ name: "coder", project: "m" });
    const ack = await a.proc.call<Ack>("send", {
      input: { to: "coder", prompt: "implement retry", conversation_id: "conv-1" },
    });
    assert.equal(ack.to, "coder");
    assert.equal(ack.to_id, b.self.id);
    const inbound = (await b.proc.waitEvent((e) => e.event === "inbound")).message as Inbound;
    assert.equal(inbound.msg_id, ack.msg_id);
    assert.equal(inbound.from, "manager");
    assert.equal(inbound.from_id, a.self.id);
    assert.equal(inbound.hops, 1);
    assert.equal(inbound.conversation_id, "conv-1");
    const pending = await until(
      async () => {
        const outcome = await a.proc.call<Outcome>("get", { msg_id: ack.msg_id });
        return outcome.delivered ? outcome : undefined;
      },
      10_000,
      "delivered",
    );
    assert.equal(pending.state, "pending");
    await b.proc.call("settle", { msg_id: ack.msg_id, result: { ok: true, text: "done: retry added" } });
    const outcome = await a.proc.call<Outcome>("await", { msg_id: ack.msg_id, timeoutMs: 10_000 });
    assert.deepEqual([outcome.state, outcome.text, outcome.from], ["reply", "done: retry added", "coder"]);
    assert.deepEqual(await a.proc.call<Outcome>("get", { msg_id: ack.msg_id }), outcome);
    await assert.rejects(b.proc.call("settle", { msg_id: ack.msg_id, result: { ok: true, text: "again" } }), {
      code: "BAD_INPUT",
    });
  });

  it("an error settle reaches the sender as an error outcome", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "err" });
    const b = await box.peer({ name: "b", project: "err" });
    const ack = await a.proc.call<Ack>("send", { input: { to: "b", prompt: "give me json" } });
    await b.proc.waitEvent((e) => e.event === "inbound");
    await b.proc.call("settle", {
      msg_id: ack.msg_id,
      result: { ok: false, code: "SCHEMA_MISMATCH", message: "reply is not valid JSON" },
    });
    const outcome = await a.proc.call<Outcome>("await", { msg_id: ack.msg_id, timeoutMs: 10_000 });
    assert.deepEqual([outcome.state, outcome.code], ["error", "SCHEMA_MISMATCH"]);
  });

  it("a retried send with the same msg_id is accepted once", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "idem" });
    const b = await box.peer({ name: "b", project: "idem" });
    const msgId = ulid();
    const first = await a.proc.call<Ack>("send", { input: { to: "b", prompt: "once", msg_id: msgId } });
    const second = await a.proc.call<Ack>("send", { input: { to: "b", prompt: "once", msg_id: msgId } });
    assert.equal(first.msg_id, msgId);
    assert.equal(second.msg_id, msgId);
    await b.proc.waitEvent((e) => e.event === "inbound");
    const self = await b.proc.call<{ queue_depth: number }>("self");
    assert.equal(self.queue_depth, 1);
    assert.equal(b.proc.events.filter((e) => e.event === "inbound").length, 1);
  });

  it("sending to an unknown name fails with UNKNOWN_PEER", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "unk" });
    await assert.rejects(a.proc.call("send", { input: { to: "nobody", prompt: "hi" } }), {
      code: "UNKNOWN_PEER",
    });
  });

  it("hop limit: hops at the limit fail with 'hop limit reached', below it pass", async () => {
    const box = sandbox({ PI_COMS_MAX_HOPS: "3" });
    const a = await box.peer({ name: "a", project: "hops" });
    const b = await box.peer({ name: "b", project: "hops" });
    await assert.rejects(a.proc.call("send", { input: { to: "b", prompt: "loop", hops: 3 } }), {
      code: "HOP_LIMIT",
      message: "hop limit reached",
    });
    const ack = await a.proc.call<Ack>("send", { input: { to: "b", prompt: "ok", hops: 2 } });
    const inbound = (await b.proc.waitEvent((e) => e.event === "inbound")).message as Inbound;
    assert.equal(inbound.msg_id, ack.msg_id);
    assert.equal(inbound.hops, 3);
  });

  it("the receiver enforces its hop limit too (a sender with a laxer setting)", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "lax", project: "hops2" }, { PI_COMS_MAX_HOPS: "50" });
    await box.peer({ name: "strict", project: "hops2" }, { PI_COMS_MAX_HOPS: "2" });
    await assert.rejects(a.proc.call("send", { input: { to: "strict", prompt: "x", hops: 2 } }), {
      code: "HOP_LIMIT",
    });
  });

  it("oversized prompts fail with TOO_LARGE before anything is sent", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "big" });
    const b = await box.peer({ name: "b", project: "big" });
    await assert.rejects(
      a.proc.call("send", { input: { to: "b", prompt: "x".repeat(MAX_TEXT_LENGTH + 1) } }),
      { code: "TOO_LARGE" },
    );
    // The largest allowed prompt, in its worst JSON escaping, still travels.
    const ack = await a.proc.call<Ack>("send", {
      input: { to: "b", prompt: "\u0001".repeat(MAX_TEXT_LENGTH) },
    });
    const inbound = (await b.proc.waitEvent((e) => e.event === "inbound")).message as Inbound;
    assert.equal(inbound.msg_id, ack.msg_id);
    assert.equal(inbound.prompt.length, MAX_TEXT_LENGTH);
  });

  it("await times out with a TIMEOUT outcome and the message stays pending", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "to" });
    await box.peer({ name: "slow", project: "to" });
    const ack = await a.proc.call<Ack>("send", { input: { to: "slow", prompt: "take your time" } });
    const outcome = await a.proc.call<Outcome>("await", { msg_id: ack.msg_id, timeoutMs: 150 });
    assert.deepEqual([outcome.state, outcome.code], ["error", "TIMEOUT"]);
    assert.equal((await a.proc.call<Outcome>("get", { msg_id: ack.msg_id })).state, "pending");
  });

  it("PI_COMS_TIMEOUT_MS is the default await timeout", async () => {
    const box = sandbox({ PI_COMS_TIMEOUT_MS: "200" });
    const a = await box.peer({ name: "a", project: "to2" });
    await box.peer({ name: "slow", project: "to2" });
    const ack = await a.proc.call<Ack>("send", { input: { to: "slow", prompt: "hm" } });
    const outcome = await a.proc.call<Outcome>("await", { msg_id: ack.msg_id });
    assert.equal(outcome.code, "TIMEOUT");
  });

  it("an AbortSignal cancels await with CANCELLED", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "abort" });
    await box.peer({ name: "b", project: "abort" });
    const ack = await a.proc.call<Ack>("send", { input: { to: "b", prompt: "wait for me" } });
    const waiting = a.proc.call("await", { msg_id: ack.msg_id, timeoutMs: 60_000, abortKey: "k" });
    await a.proc.call("abort", { abortKey: "k" });
    await assert.rejects(waiting, { code: "CANCELLED" });
    assert.equal((await a.proc.call<Outcome>("get", { msg_id: ack.msg_id })).state, "pending");
  });

  it("a recipient that closes fails its unsettled messages with PEER_GONE", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "leave" });
    const b = await box.peer({ name: "b", project: "leave" });
    const ack = await a.proc.call<Ack>("send", { input: { to: "b", prompt: "are you there" } });
    await b.proc.waitEvent((e) => e.event === "inbound");
    const waiting = a.proc.call<Outcome>("await", { msg_id: ack.msg_id, timeoutMs: 60_000 });
    await b.proc.call("close");
    const outcome = await waiting;
    assert.deepEqual([outcome.state, outcome.code], ["error", "PEER_GONE"]);
  });

  it("messages both ways between two agents do not deadlock", async () => {
    const box = sandbox();
    const a = await box.peer({ name: "a", project: "both" });
    const b = await box.peer({ name: "b", project: "both" });
    await a.proc.call("autoReply", { on: true });
    await b.proc.call("autoReply", { on: true });
    const [toB, toA] = await Promise.all([
      a.proc.call<Ack>("send", { input: { to: "b", prompt: "ping from a" } }),
      b.proc.call<Ack>("send", { input: { to: "a", prompt: "ping from b" } }),
    ]);
    const [fromB, fromA] = await Promise.all([
      a.proc.call<Outcome>("await", { msg_id: toB.msg_id, timeoutMs: 10_000 }),
      b.proc.call<Outcome>("await", { msg_id: toA.msg_id, timeoutMs: 10_000 }),
    ]);
    assert.equal(fromB.text, "echo: ping from a");
    assert.equal(fromA.text, "echo: ping from b");
  });

  it("in process: an outcome settled while the connection is down arrives once the stream resumes", async () => {
    await withPair("resume", async (a, b) => {
      b.onInbound(() => {});
      const ack = await a.send({ to: "b", prompt: "hold on" });
      await untilDelivered(a, ack.msg_id);
      // Drop a's connection to b (b stays up), and settle while nothing is connected.
      dropLinks(a);
      await b.settle(ack.msg_id, { ok: true, text: "done while you were away" });
      const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
      assert.equal(outcome.state, "reply");
      assert.equal(outcome.state === "reply" && outcome.text, "done while you were away");
      const next = await a.send({ to: "b", prompt: "again" });
      await b.settle(next.msg_id, { ok: false, code: "BAD_INPUT", message: "no thanks" });
      const second = await a.await(next.msg_id, { timeoutMs: 10_000 });
      assert.equal(second.state === "error" && second.code, "BAD_INPUT");
    });
  });

  it("in process: a message the peer forgot while the link was down ends with an error, not silence", async () => {
    await withPair("forgot", async (a, b) => {
      b.onInbound(() => {});
      const ack = await a.send({ to: "b", prompt: "remember me" });
      await untilDelivered(a, ack.msg_id);
      dropLinks(a);
      // What b does after 10,000 newer settles: it no longer knows the message.
      (b as unknown as { inbox: { received: Map<string, unknown> } }).inbox.received.delete(ack.msg_id);
      const outcome = await a.await(ack.msg_id, { timeoutMs: 10_000 });
      assert.equal(outcome.state === "error" && outcome.code, "BAD_INPUT");
    });
  });

  it("in process: many sends reuse one connection per peer", async () => {
    const box = sandbox();
    const b = await box.peer({ name: "b", project: "reuse" });
    await b.proc.call("autoReply", { on: true, quiet: true });
    const node = await startP2P({ name: "a", project: "reuse", env: box.env });
    try {
      const acks = await Promise.all(
        Array.from({ length: 50 }, (_, i) => node.send({ to: "b", prompt: `n${i}` })),
      );
      const outcomes = await Promise.all(acks.map((ack) => node.await(ack.msg_id, { timeoutMs: 10_000 })));
      assert.ok(outcomes.every((outcome) => outcome.state === "reply"));
      assert.equal((await node.peerClient("b").agents.card.query()).name, "b");
      const untyped = getUntypedClient(node.peerClient("b"));
      assert.equal(
        ((await untyped.query("agents.card")) as { name: string }).name,
        "b",
        "tRPC's untyped client too",
      );
      assert.equal(await b.proc.call<number>("connections"), 1);
    } finally {
      await node.close();
    }
  });
});

describe("p2p link", () => {
  const sayHello = async (call: RawCall) => {
    await call("agents.hello", { id: ulid(), agent_token: "x".repeat(32) });
  };
  /** A typed client over its own channel to a peer server on `path`; both closed after `run`. */
  const overLink = async (
    path: string,
    served: ComsBackend,
    run: (client: TRPCClient<ComsRouter>) => Promise<void>,
    handshake?: (call: RawCall) => Promise<void>,
  ) => {
    const server = await startPeerServer({ socketPath: path, backend: served });
    const channel = new IpcChannel({ socketPath: path, ...(handshake ? { handshake } : {}) });
    try {
      await run(createTRPCClient<ComsRouter>({ links: [ipcLink(channel)] }));
    } finally {
      channel.close();
      await server.close();
    }
  };
  const backend = (name: string): ComsBackend => {
    const id = ulid();
    const card = {
      id,
      name,
      purpose: "",
      model: "",
      explicit: false,
      project: "p",
      context_used_pct: null,
      queue_depth: 0,
      status: "online" as const,
      started_at: Date.now(),
    };
    const none = async () => {
      throw new Error("not used");
    };
    return {
      register: none,
      heartbeat: none,
      leave: none,
      ack: none,
      settle: none,
      inbox: none as never,
      list: async () => [card],
      hello: async () => card,
      card: async () => card,
      send: none,
      get: none,
      watch: none as never,
    };
  };

  it("reconnects on the next call when the peer's socket comes back; in-flight calls fail with PEER_GONE", async () => {
    const box = sandbox();
    const path = `${box.dir}/l.sock`;
    let server = await startPeerServer({ socketPath: path, backend: backend("first") });
    const channel = new IpcChannel({ socketPath: path });
    const client = createTRPCClient<ComsRouter>({ links: [ipcLink(channel)] });
    try {
      assert.equal((await client.agents.card.query()).name, "first");
      await server.close();
      await assert.rejects(
        client.agents.card.query(),
        (error: unknown) => toComsError(error).code === "PEER_GONE",
      );
      server = await startPeerServer({ socketPath: path, backend: backend("second") });
      assert.equal((await client.agents.card.query()).name, "second");
    } finally {
      channel.close();
      await server.close();
    }
  });

  it("a peer that never answers: the call fails with TIMEOUT, and with PEER_GONE when it hangs up", async () => {
    const box = sandbox();
    const path = `${box.dir}/mute.sock`;
    const { createServer } = await import("node:net");
    const sockets: import("node:net").Socket[] = [];
    const mute = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => mute.listen(path, resolve));
    const channel = new IpcChannel({ socketPath: path, callTimeoutMs: 200 });
    const client = createTRPCClient<ComsRouter>({ links: [ipcLink(channel)] });
    try {
      await assert.rejects(
        client.agents.card.query(),
        (error: unknown) => toComsError(error).code === "TIMEOUT",
      );
      // Its handler is attached now: it may fail (timeout or hang-up) while the rest is set up.
      const hanging = assert.rejects(
        client.agents.list.query({ include_explicit: false }),
        (error: unknown) => ["PEER_GONE", "TIMEOUT"].includes(toComsError(error).code),
      );
      await until(() => sockets.length > 0, 5000, "a connection");
      const slow = new IpcChannel({ socketPath: path, callTimeoutMs: 60_000 });
      const slowClient = createTRPCClient<ComsRouter>({ links: [ipcLink(slow)] });
      const inFlight = slowClient.agents.card.query();
      await until(() => sockets.length > 1, 5000, "a second connection");
      for (const socket of sockets) socket.destroy();
      await assert.rejects(inFlight, (error: unknown) => toComsError(error).code === "PEER_GONE");
      await hanging;
      slow.close();
    } finally {
      channel.close();
      mute.close();
    }
  });

  it("a result that fails the procedure's output schema is an error, never data", async () => {
    const box = sandbox();
    const path = `${box.dir}/bad-out.sock`;
    const base = backend("out");
    await overLink(
      path,
      { ...base, card: async () => ({ ...(await base.card(null)), name: 42 }) as never },
      async (client) => {
        await assert.rejects(client.agents.card.query(), (error: unknown) => {
          const shape = error as { data?: { code?: string } };
          return shape.data?.code === "INTERNAL_SERVER_ERROR";
        });
        assert.equal((await client.agents.list.query({ include_explicit: false }))[0]?.name, "out");
      },
    );
  });

  it("a backend without the outcome stream answers it with BAD_INPUT", async () => {
    const box = sandbox();
    const path = `${box.dir}/plain.sock`;
    await overLink(
      path,
      backend("plain"),
      async (client) => {
        const failure = await new Promise<unknown>((resolve) => {
          client.messages.outcomes.subscribe({ after: 0 }, { onError: resolve });
        });
        assert.equal(toComsError(failure).code, "BAD_INPUT");
      },
      sayHello,
    );
  });

  it("a subscription stops when unsubscribed", async () => {
    const box = sandbox();
    const path = `${box.dir}/sub.sock`;
    let stopped = false;
    const base = backend("w");
    const watching: ComsBackend = {
      ...base,
      watch: async function* (_caller, msgId, signal) {
        try {
          yield { state: "pending" as const, msg_id: msgId, delivered: false };
          await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve()));
        } finally {
          stopped = true;
        }
      },
    };
    await overLink(
      path,
      watching,
      async (client) => {
        let got = 0;
        const sub = client.messages.watch.subscribe({ msg_id: ulid() }, { onData: () => got++ });
        await until(() => got === 1, 5000, "the first item");
        sub.unsubscribe();
        await until(() => stopped, 5000, "the server-side generator to finish");
      },
      sayHello,
    );
  });
});

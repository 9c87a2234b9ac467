/**
 * The lean hub adapter against tRPC's stock one, on one backend: the same
 * requests must get the same status, headers that matter and body bytes, SSE
 * streams the same frames, and tRPC's own client links the same answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createTRPCClient,
  httpBatchLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
} from "@trpc/client";
import { sseStreamProducer, tracked } from "@trpc/server/unstable-core-do-not-import";
import type { ComsRouter } from "../contract/router.ts";
import type { InboxEvent } from "../contract/schemas.ts";
import { HubBackend } from "../hub/backend/backend.ts";
import { FetchEventSource } from "../hub/client/event-source.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER, RequestAuth } from "../hub/http/auth.ts";
import { serveNode } from "../hub/http/node.ts";
import type { ServedHub } from "../hub/http/routes.ts";
import { SseStreams } from "../hub/http/sse-writer.ts";
import { MemoryStore } from "../hub/store/memory.ts";
import { wireJson, wireTransformer } from "../lib/wire-transformer.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";
import { serveNodeStock } from "./support/stock-node-adapter.ts";

const TOKEN = "compat-token-0123456789abcdefghijklmnop";
const TERMINATOR = "\n\n\n";

interface Served {
  name: string;
  url: string;
  hub: ServedHub;
}

describe("lean hub adapter vs tRPC's stock adapter (same backend)", () => {
  let backend: HubBackend;
  let stock: Served;
  let lean: Served;
  let alice: { [key: string]: string; authorization: string };
  let bob: { [key: string]: string; authorization: string };
  const anon = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    backend = new HubBackend(new MemoryStore(), "compat", TEST_LIMITS);
    const auth = new RequestAuth(TOKEN, backend);
    const opts = { host: "127.0.0.1", port: 0, backend, auth, maxBodyBytes: 256 * 1024 };
    const s = await serveNodeStock(opts);
    const l = await serveNode(opts);
    stock = { name: "stock", url: `http://127.0.0.1:${s.port}`, hub: s };
    lean = { name: "lean", url: `http://127.0.0.1:${l.port}`, hub: l };
    const creds = async (name: string) => {
      const r = await backend.register({ name, project: "compat" } as never);
      return { ...anon, [AGENT_ID_HEADER]: r.card.id, [AGENT_TOKEN_HEADER]: r.agent_token };
    };
    alice = await creds("alice");
    bob = await creds("bob");
  });
  after(async () => {
    await backend.close();
    await stock.hub.close();
    await lean.hub.close();
  });

  async function both(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
    const answers = [];
    for (const target of [stock, lean]) {
      const res = await fetch(`${target.url}${path}`, init);
      answers.push({
        status: res.status,
        type: res.headers.get("content-type"),
        allow: res.headers.get("allow"),
        vary: res.headers.get("vary"),
        body: await res.text(),
      });
    }
    return answers as [(typeof answers)[number], (typeof answers)[number]];
  }

  const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
  const post = (headers: Record<string, string>, body?: string) => ({
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    ...(body !== undefined ? { body } : {}),
  });

  it("answers calls, batches and every kind of error with the same status and bytes", async () => {
    const unknownMsg = "01J00000000000000000000000";
    const cases: Array<[string, string, RequestInit]> = [
      ["query", `/trpc/agents.list?input=${q({ json: { include_explicit: true } })}`, { headers: alice }],
      ["query without input", "/trpc/agents.card", { headers: bob }],
      ["procedure error (no agent)", "/trpc/agents.card", { headers: anon }],
      [
        "batch ok + error + unknown (207)",
        `/trpc/agents.list,messages.get,no.such?batch=1&input=${q({ 0: { json: {} }, 1: { json: { msg_id: unknownMsg } } })}`,
        { headers: alice },
      ],
      ["batch of one", `/trpc/agents.card?batch=1&input=${q({})}`, { headers: alice }],
      ["malformed JSON", "/trpc/agents.register", post(anon, "{not json")],
      ["invalid input", "/trpc/agents.register", post(anon, JSON.stringify({ json: { name: 42 } }))],
      ["unknown procedure", "/trpc/no.such.procedure", post(anon, "{}")],
      ["mutation by GET", "/trpc/messages.send", { headers: alice }],
      ["query by POST", "/trpc/agents.list", post(alice, JSON.stringify({ json: {} }))],
      ["missing content type", "/trpc/messages.ack", { method: "POST", headers: alice, body: "{}" }],
      ["mixed types in a batch", "/trpc/agents.list,messages.ack?batch=1", post(alice, "{}")],
      ["batch input not an object", "/trpc/messages.ack,messages.ack?batch=1", post(alice, "[1]")],
      ["void mutation", "/trpc/messages.ack", post(alice, JSON.stringify({ json: { msg_ids: [] } }))],
      [
        "domain error",
        "/trpc/messages.settle",
        post(bob, JSON.stringify({ json: { msg_id: unknownMsg, result: { ok: true, text: "x" } } })),
      ],
      ["bad percent-encoding", "/trpc/agents.%E0%A4%A", { headers: alice }],
      ["HEAD", "/trpc/agents.list", { method: "HEAD", headers: alice }],
    ];
    for (const [what, path, init] of cases) {
      const [a, b] = await both(path, init as never);
      assert.deepEqual(b, a, `${what}: ${path}`);
    }
  });

  async function readEvents(url: string, headers: Record<string, string>, events: number): Promise<string> {
    const controller = new AbortController();
    const res = await fetch(url, { headers, signal: controller.signal });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (text.split(TERMINATOR).length - 1 < events) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    return text;
  }

  it("streams the inbox with the same frames: connected, tracked data, resume by Last-Event-ID", async () => {
    const url = (t: Served) => `${t.url}/trpc/messages.inbox?input=${q({ json: { lastEventId: null } })}`;
    const reading = [readEvents(url(stock), bob, 3), readEvents(url(lean), bob, 3)] as const;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const caller = { id: alice[AGENT_ID_HEADER] as string, name: "alice" };
    await backend.send(caller, { to: "bob", prompt: "one", hops: 0 } as never);
    await backend.send(caller, { to: "bob", prompt: "two", hops: 0 } as never);
    const [a, b] = await Promise.all(reading);
    assert.equal(b, a);
    assert.match(
      a,
      /^event: connected\ndata: \{"reconnectAfterInactivityMs":37500\}\n\n\ndata: \{"json":\{"kind":"message"/,
    );
    const firstId = /\nid: (\S+)\n/.exec(a)?.[1] as string;
    // Resumed after the first: only the second comes again, byte for byte.
    const resumed = await Promise.all([
      readEvents(url(stock), { ...bob, "last-event-id": firstId }, 2),
      readEvents(url(lean), { ...bob, "last-event-id": firstId }, 2),
    ]);
    assert.equal(resumed[1], resumed[0]);
    assert.match(resumed[0], /"prompt":"two"/);
    assert.doesNotMatch(resumed[0], /"prompt":"one"/);
  });

  it("refuses a stream inside the protocol the same way (serialized-error) and ends untracked streams with return", async () => {
    const inbox = `/trpc/messages.inbox?input=${q({ json: {} })}`;
    const [a, b] = await both(inbox, { headers: anon });
    assert.deepEqual(b, a);
    assert.match(a.body, /event: serialized-error/);
    // An untracked subscription resumed with an id: the restore-id dance, then `return` once final.
    const caller = { id: alice[AGENT_ID_HEADER] as string, name: "alice" };
    const sent = await backend.send(caller, { to: "bob", prompt: "watch me", hops: 0 } as never);
    const watch = `/trpc/messages.watch?input=${q({ json: { msg_id: sent.msg_id } })}`;
    const headers = { ...alice, "last-event-id": "some.id" };
    const reading = [
      readEvents(`${stock.url}${watch}`, headers, 4),
      readEvents(`${lean.url}${watch}`, headers, 4),
    ] as const;
    await new Promise((resolve) => setTimeout(resolve, 100));
    await backend.settle({ id: bob[AGENT_ID_HEADER] as string, name: "bob" }, {
      msg_id: sent.msg_id,
      result: { ok: true, text: "done" },
    } as never);
    const [x, y] = await Promise.all(reading);
    assert.equal(y, x);
    assert.match(x, /event: restore-id\ndata: \nid: some\.id\n/);
  });

  it("pings and ends like tRPC's SSE producer (frames compared with tRPC's own)", async () => {
    async function* source() {
      yield tracked("7", { a: 1 });
      await new Promise((resolve) => setTimeout(resolve, 130));
      yield { b: [1, 2] };
    }
    const theirs = sseStreamProducer({
      data: source(),
      ping: { enabled: true, intervalMs: 40 },
      // Ours tells the reader to give up after 2.5 pings of silence, as tRPC's `client` option does.
      client: { reconnectAfterInactivityMs: 100 },
      serialize: wireTransformer.serialize,
    }).pipeThrough(new TextDecoderStream());
    let expected = "";
    for await (const chunk of theirs) expected += chunk;
    let ours = "";
    await new Promise<void>((resolve) => {
      const streams = new SseStreams({ pingMs: 40, maxBufferedBytes: 1 << 20, json: wireJson });
      streams.start(
        {
          write: (c) => {
            ours += c;
          },
          buffered: () => 0,
          end: resolve,
          cut: resolve,
          onDrain: () => {},
        },
        {
          kind: "sse",
          lastEventId: null,
          source: source(),
          abort: new AbortController(),
          formatError: () => "",
        },
      );
    });
    const ping = "event: ping\ndata: \n\n\n";
    assert.ok(expected.includes(ping) && ours.includes(ping), `${expected}\n---\n${ours}`);
    assert.equal(ours.replaceAll(ping, ""), expected.replaceAll(ping, ""));
  });

  function clients(target: Served, headers: Record<string, string>) {
    const url = `${target.url}/trpc`;
    const subscriptions = httpSubscriptionLink({
      url,
      transformer: wireTransformer,
      EventSource: FetchEventSource,
      eventSourceOptions: () => ({ headers }),
    });
    const make = (link: typeof subscriptions) =>
      createTRPCClient<ComsRouter>({
        links: [
          splitLink({ condition: (op) => op.type === "subscription", true: subscriptions, false: link }),
        ],
      });
    return {
      batch: make(httpBatchLink({ url, transformer: wireTransformer, headers })),
      single: make(httpLink({ url, transformer: wireTransformer, headers })),
    };
  }

  it("gives tRPC's own httpBatchLink, httpLink and httpSubscriptionLink the same answers", async () => {
    const results = [];
    for (const target of [stock, lean]) {
      const { batch, single } = clients(target, alice);
      const anonymous = clients(target, anon);
      const batched = await Promise.all([
        batch.agents.list.query({ include_explicit: true }),
        batch.messages.get.query({ msg_id: "01J00000000000000000000000" }),
        batch.agents.card.query(),
      ]);
      const one = await single.agents.list.query({});
      const failures = [];
      for (const call of [
        () => anonymous.batch.agents.card.query(),
        () => anonymous.single.agents.card.query(),
      ]) {
        const error = await call().catch((e: unknown) => e);
        assert.ok(error instanceof TRPCClientError);
        failures.push({ message: error.message, data: error.data });
      }
      results.push({ batched, one, failures });
    }
    assert.deepEqual(results[1], results[0]);

    const received: Array<Array<{ id: string; data: InboxEvent }>> = [[], []];
    const subs = [stock, lean].map((target, i) =>
      clients(target, bob).single.messages.inbox.subscribe(
        { lastEventId: null },
        { onData: (item) => (received[i] as unknown[]).push(item) },
      ),
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 150));
      const caller = { id: alice[AGENT_ID_HEADER] as string, name: "alice" };
      await backend.send(caller, { to: "bob", prompt: "for the links", hops: 0 } as never);
      const deadline = Date.now() + 10_000;
      const last = (i: number) => received[i]?.at(-1);
      while (Date.now() < deadline) {
        const a = last(0);
        const b = last(1);
        if (
          a?.data.kind === "message" &&
          a.data.message.prompt === "for the links" &&
          b?.data.kind === "message" &&
          b.data.message.prompt === "for the links"
        )
          break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(received[1], received[0]);
      assert.ok((received[0]?.length ?? 0) > 0);
    } finally {
      for (const sub of subs) sub.unsubscribe();
    }
  });
});

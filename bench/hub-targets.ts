/**
 * What the hub benchmark drives: the hub (Node or Bun) loaded either through
 * the typed tRPC clients pi sessions use, or through a raw-fetch load
 * generator (pre-built JSON bodies, a plain SSE reader, acks coalesced the
 * way the typed client does), so hub cost and client cost can be told apart;
 * and the bare node:http SSE relay, the floor.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { InboxEvent } from "../contract/schemas.ts";
import { AckBatcher } from "../hub/client/ack-batcher.ts";
import { FetchEventSource } from "../hub/client/event-source.ts";
import { connectHub } from "../hub/client/hub-client.ts";
import { openInbox } from "../hub/client/inbox-stream.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { rawAgent } from "../test/support/hub-raw-client.ts";
import { type BenchHub, benchEnv, spawnServer, startBenchHub, stop } from "./bench-server.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SELF = fileURLToPath(new URL("./hub-targets.ts", import.meta.url));

export interface Target {
  name: string;
  pid: number;
  /** Connect one receiving agent; `onDelivered` gets the payload of every message it receives. */
  addAgent(index: number, onDelivered: (payload: string) => void): Promise<void>;
  send(to: number, payload: string): Promise<void>;
  /** Send many at once to one agent, as one client pipelining batches would (undefined: not offered). */
  sendBatch?(to: number, payloads: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The hub limits a bench run needs, set here rather than left to the defaults:
 * a thousand agents; no send rate limit (it guards a shared hub against one
 * runaway agent, here it would only cap the senders); and no per-recipient
 * queue bound, since the receivers take every message and never answer it,
 * so one recipient holds thousands of unanswered messages in one run (the
 * default --max-queue of 1,000 would refuse sends and stall the run).
 */
const BENCH_LIMITS = ["--max-agents", "5000", "--max-sends-per-sec", "0", "--max-queue", "0"];

if (process.argv[2] === "--relay") runRelay();

/** The floor: the least an HTTP + SSE relay can do. */
function runRelay(): void {
  const streams = new Map<string, ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://relay");
    if (req.method === "GET" && url.pathname === "/sse") {
      const id = url.searchParams.get("id") ?? "";
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      res.write(": connected\n\n");
      streams.set(id, res);
      req.once("close", () => streams.delete(id));
      return;
    }
    if (req.method === "POST" && url.pathname === "/send") {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        const { to, data } = JSON.parse(body) as { to: string; data: string };
        const stream = streams.get(to);
        if (!stream) {
          res.writeHead(404).end();
          return;
        }
        stream.write(`data: ${JSON.stringify(data)}\n\n`);
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 30_000;
  // A clean exit on SIGTERM, so a relay run under --cpu-prof writes its profile.
  process.once("SIGTERM", () => process.exit(0));
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as { port: number };
    process.stdout.write(`listening on http://127.0.0.1:${address.port}\n`);
  });
}

async function spawnHub(runtime: "node" | "bun"): Promise<BenchHub> {
  // BENCH_HUB_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the hub process (Node).
  const flags = runtime === "node" ? (process.env.BENCH_HUB_FLAGS ?? "").split(" ").filter(Boolean) : [];
  return startBenchHub(runtime, {
    prefix: "pi-coms-hub-bench-",
    args: BENCH_LIMITS,
    flags,
    startupMs: 15_000,
  });
}

async function stopHub(hub: BenchHub): Promise<void> {
  await stop(hub.child);
  rmSync(hub.dir, { recursive: true, force: true });
}

/** The hub driven by the typed clients: HubClient senders (batching what they have in flight), tRPC receivers. */
export async function hubViaTrpc(runtime: "node" | "bun"): Promise<Target> {
  const hub = await spawnHub(runtime);
  return trpcLoad(`${runtime === "bun" ? "bun" : "node"} trpc`, hub.child.pid as number, [hub.url], hub, () =>
    stopHub(hub),
  );
}

/**
 * Two Node hubs on one redis-server (AOF, fsync every second), loaded by the
 * same typed clients: agents and senders alternate between the two hubs, so
 * half the traffic crosses from the follower to the lease holder. CPU and RSS
 * columns are the holder's alone.
 */
export async function hubsOnRedis(): Promise<Target> {
  const { startRedis } = await import("../test/support/redis-server.ts");
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-hub-bench-"));
  const token = "bench-token-0123456789abcdef0123";
  const env = benchEnv(dir, { PI_COMS_NET_AUTH_TOKEN: token });
  const args = [join(ROOT, "hub/cli.ts"), "--project", "bench", ...BENCH_LIMITS, "--store", redis.url];
  const a = await spawnServer(process.execPath, args, env, 15_000);
  const b = await spawnServer(process.execPath, args, env, 15_000);
  return trpcLoad("redis trpc", a.child.pid as number, [a.url, b.url], { token, env }, async () => {
    await stop(b.child);
    await stop(a.child);
    await redis.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
}

async function trpcLoad(
  name: string,
  pid: number,
  urls: string[],
  auth: { token: string; env: NodeJS.ProcessEnv },
  stopAll: () => Promise<void>,
): Promise<Target> {
  const { token, env } = auth;
  const urlOf = (i: number) => urls[i % urls.length] as string;
  const senders = await Promise.all(
    Array.from({ length: 4 }, (_, i) =>
      connectHub({ url: urlOf(i), token, project: "bench", name: `sender${i}`, env }),
    ),
  );
  let turn = 0;
  const subs: Array<{ unsubscribe(): void }> = [];
  return {
    name,
    pid,
    async addAgent(index, onDelivered) {
      const url = urlOf(index);
      // The typed client's receiving side (its inbox stream reader and coalesced acks over tRPC),
      // without HubClient's per-agent peer-list bookkeeping, which a thousand agents in one process would pay.
      const agent = await rawAgent(url, token, `r${index}`);
      const acks = new AckBatcher((ids) => agent.client.messages.ack.mutate({ msg_ids: ids }));
      const headers = {
        authorization: `Bearer ${token}`,
        [AGENT_ID_HEADER]: agent.card.id,
        [AGENT_TOKEN_HEADER]: agent.agentToken,
      };
      await new Promise<void>((resolve) => {
        subs.push(
          openInbox({
            url: `${url}/trpc/messages.inbox`,
            headers: () => headers,
            lastEventId: null,
            fetch,
            inactivityMs: 40_000,
            onConnected: resolve,
            onEvent: (_id, data: InboxEvent) => {
              if (data.kind !== "message") return;
              onDelivered(data.message.prompt);
              acks.add(data.message.msg_id);
            },
            onEnd: () => {},
          }),
        );
      });
    },
    async send(to, payload) {
      const sender = senders[turn++ % senders.length] as (typeof senders)[number];
      await sender.send({ to: `r${to}`, prompt: payload });
    },
    async sendBatch(to, payloads) {
      // One client; its link batches whatever is in flight (up to 50 calls per request).
      const sender = senders[0] as (typeof senders)[number];
      await Promise.all(payloads.map((prompt) => sender.send({ to: `r${to}`, prompt })));
    },
    async close() {
      for (const sub of subs) sub.unsubscribe();
      await Promise.all(senders.map((sender) => sender.close()));
      await stopAll();
    },
  };
}

/** The hub driven by raw fetch: the same HTTP requests and SSE frames, no client library in the way. */
export async function hubViaFetch(runtime: "node" | "bun"): Promise<Target> {
  const hub = await spawnHub(runtime);
  const { url, token } = hub;
  const register = async (name: string) => {
    const res = await fetch(`${url}/trpc/agents.register`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ json: { name } }),
    });
    const body = (await res.json()) as {
      result: { data: { json: { card: { id: string }; agent_token: string } } };
    };
    const { card, agent_token } = body.result.data.json;
    return {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      [AGENT_ID_HEADER]: card.id,
      [AGENT_TOKEN_HEADER]: agent_token,
    };
  };
  const senders = await Promise.all(Array.from({ length: 4 }, (_, i) => register(`sender${i}`)));
  let turn = 0;
  const sources: FetchEventSource[] = [];
  const input = encodeURIComponent(JSON.stringify({ json: { lastEventId: null } }));
  return {
    name: `${runtime === "bun" ? "bun" : "node"} fetch`,
    pid: hub.child.pid as number,
    async addAgent(index, onDelivered) {
      const headers = await register(`r${index}`);
      const acks = new AckBatcher(async (ids) => {
        const res = await fetch(`${url}/trpc/messages.ack`, {
          method: "POST",
          headers,
          body: JSON.stringify({ json: { msg_ids: ids } }),
        });
        await res.text();
      });
      const source = new FetchEventSource(`${url}/trpc/messages.inbox?input=${input}`, { headers });
      sources.push(source);
      source.addEventListener("message", (event: { data: string }) => {
        const { json } = JSON.parse(event.data) as { json: InboxEvent };
        if (json.kind !== "message") return;
        onDelivered(json.message.prompt);
        acks.add(json.message.msg_id);
      });
      await new Promise((resolve) => source.addEventListener("connected", resolve));
    },
    async send(to, payload) {
      const headers = senders[turn++ % senders.length] as Record<string, string>;
      const res = await fetch(`${url}/trpc/messages.send`, {
        method: "POST",
        headers,
        body: `{"json":{"to":"r${to}","prompt":${JSON.stringify(payload)}}}`,
      });
      await res.text();
    },
    async sendBatch(to, payloads) {
      const headers = senders[0] as Record<string, string>;
      const paths = payloads.map(() => "messages.send").join(",");
      const body = `{${payloads.map((p, i) => `"${i}":{"json":{"to":"r${to}","prompt":${JSON.stringify(p)}}}`).join(",")}}`;
      const res = await fetch(`${url}/trpc/${paths}?batch=1`, { method: "POST", headers, body });
      await res.text();
    },
    async close() {
      for (const source of sources) source.close();
      await stopHub(hub);
    },
  };
}

export async function relay(): Promise<Target> {
  const { child, url } = await spawnServer(process.execPath, [SELF, "--relay"], process.env, 15_000);
  const sources: FetchEventSource[] = [];
  return {
    name: "relay",
    pid: child.pid as number,
    async addAgent(index, onDelivered) {
      const source = new FetchEventSource(`${url}/sse?id=r${index}`);
      sources.push(source);
      source.addEventListener("message", (event: { data: string }) => onDelivered(JSON.parse(event.data)));
      await new Promise((resolve) => source.addEventListener("open", resolve));
    },
    async send(to, payload) {
      const response = await fetch(`${url}/send`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ to: `r${to}`, data: payload }),
      });
      await response.text();
    },
    async close() {
      for (const source of sources) source.close();
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

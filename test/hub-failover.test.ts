/**
 * Failover on a shared Redis beyond a clean crash: a lease holder that hangs
 * (SIGSTOP: it keeps its connections open and silent) must not hold up
 * deliveries until it wakes, and clients given the same URL list spread over
 * the hubs and drift back to their own once it returns.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import type { Message } from "../contract/schemas.ts";
import type { HubClient } from "../hub/client/hub-client.ts";
import { redisCluster } from "./support/hub-cluster.ts";
import { type HubProcess, kill9, sendSurely, waitFor } from "./support/hub-harness.ts";

const TOKEN = "failover-test-token-0123456789abcdef";
const { world, hubOn } = redisCluster(TOKEN);

/** Whether the process is stopped (state T in /proc). */
function stopped(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
}

function tally(clients: HubClient[]): Map<string, number> {
  const on = new Map<string, number>();
  for (const client of clients) on.set(client.url, (on.get(client.url) ?? 0) + 1);
  return on;
}

describe("failover beyond a crash", { timeout: 180_000 }, () => {
  test("a hung lease holder (SIGSTOP): deliveries to every recipient resume while it is still stopped", async () => {
    const w = world();
    let holder: HubProcess | undefined;
    try {
      const hubs = [await hubOn(w, "hung"), await hubOn(w, "hung"), await hubOn(w, "hung")];
      holder = hubs[0] as HubProcess;
      assert.match(holder.output(), /active hub/, "the first hub holds the lease");
      const list = hubs.map((hub) => hub.url).join(",");
      // Recipients on every hub: on the holder's own port, and relayed to it through the others.
      const names = ["r0", "r1", "r2", "r3", "r4", "r5"];
      const received = new Map<string, string[]>(names.map((name) => [name, []]));
      const recipients: HubClient[] = [];
      for (const name of names) {
        const client = await w.connect(holder, { url: list, name });
        client.onInbound((message: Message) => {
          received.get(name)?.push(message.prompt);
          void client.settle(message.msg_id, { ok: true, text: "ok" }).catch(() => {});
        });
        recipients.push(client);
      }
      assert.equal(tally(recipients).get(holder.url), 2, "two recipients use the holder's own port");
      const senders = await Promise.all(
        ["s0", "s1", "s2"].map((name) => w.connect(holder as HubProcess, { url: list, name })),
      );
      for (const [i, name] of names.entries()) await sendSurely(senders[i % 3] as HubClient, name, "before");
      await waitFor(() => names.every((name) => received.get(name)?.includes("before")), {
        what: "every recipient to get the first message",
      });

      process.kill(holder.pid, "SIGSTOP");
      // Bounded below the clients' fallback deadline (40 s) from the stop on: only noticing the silent
      // streams (not a timeout that ends anyway) gets every message through while the holder is stopped.
      const bound = Date.now() + 30_000;
      await Promise.all(names.map((name, i) => sendSurely(senders[i % 3] as HubClient, name, "during")));
      await waitFor(() => names.every((name) => received.get(name)?.includes("during")), {
        what: "every recipient to get a message sent after the holder hung",
        timeoutMs: Math.max(0, bound - Date.now()),
      });
      assert.ok(stopped(holder.pid), "the old holder is still stopped");
      assert.ok(
        recipients.every((client) => client.url !== holder?.url),
        "nobody stays on the hung hub",
      );
    } finally {
      if (holder && holder.child.exitCode === null) process.kill(holder.pid, "SIGCONT");
      await w.dispose();
    }
  });

  test("clients given the same URL list spread over the hubs, and drift back to theirs when it returns", async () => {
    const w = world();
    try {
      const hubs = [await hubOn(w, "spread"), await hubOn(w, "spread"), await hubOn(w, "spread")];
      const list = hubs.map((hub) => hub.url).join(",");
      const clients: HubClient[] = [];
      for (let i = 0; i < 6; i++)
        clients.push(await w.connect(hubs[0] as HubProcess, { url: list, name: `c${i}` }));
      assert.deepEqual(
        hubs.map((hub) => tally(clients).get(hub.url)),
        [2, 2, 2],
        "six clients, two on each of three hubs",
      );

      // A hub that is not the holder dies: its clients move; it comes back on the same port: they return.
      const gone = hubs[1] as HubProcess;
      const its = clients.filter((client) => client.url === gone.url);
      await kill9(gone);
      await waitFor(() => clients.every((client) => client.url !== gone.url), {
        what: "the dead hub's clients to move",
        timeoutMs: 30_000,
      });
      const back = await hubOn(w, "spread", { args: ["--port", String(gone.port)] });
      assert.equal(back.url, gone.url);
      await waitFor(() => its.every((client) => client.url === gone.url), {
        what: "its clients to drift back",
        timeoutMs: 30_000,
      });
      assert.deepEqual(
        hubs.map((hub) => tally(clients).get(hub.url)),
        [2, 2, 2],
        "spread as before",
      );
      // And they are served there: a round trip through the returned hub.
      const [first, second] = its as [HubClient, HubClient];
      second.onInbound((message: Message) => void second.settle(message.msg_id, { ok: true, text: "back" }));
      const ack = await first.send({ to: second.self.name, prompt: "hello again" });
      assert.equal((await first.await(ack.msg_id, { timeoutMs: 10_000 })).state, "reply");
    } finally {
      await w.dispose();
    }
  });
});

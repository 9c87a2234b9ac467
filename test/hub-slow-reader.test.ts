/**
 * Readers that fall behind: the hub holds at most --max-stream-buffer-bytes
 * for each of them, cuts them, and they resume by Last-Event-ID without
 * losing anything. Measured on a real hub process (its RSS from /proc), on
 * Node and on Bun (whose sockets keep nothing they cannot send at once: the
 * hub queues it).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { type ClientRequest, get } from "node:http";
import { after, describe, it } from "node:test";
import type { Message } from "../contract/schemas.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

const STALLED = 8;
const BIG_MESSAGES = 100;
/** "€" is 3 bytes of UTF-8: ~600 KB per message. */
const BIG_PROMPT_CHARS = 200_000;
const LIMIT = 64 * 1024;

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

for (const runtime of ["node", "bun"] as const)
  describe(`slow readers (${runtime} hub)`, () => {
    const world = new HubWorld();
    after(() => world.dispose());

    it("never holds more than the per-stream limit for readers that stop reading, and lets go of them", async () => {
      // Loopback sockets here take ~36 MB each into kernel buffers before the hub's own buffer grows at all, so
      // the attack (many stalled streams of one agent, then a flood for it) is scaled in bytes per stream:
      // the flood is queued first, then every stalled stream gets all of it replayed (~60 MB each).
      const hub = await world.startHub({
        project: "slow",
        runtime,
        args: [
          ...["--store", "memory", "--max-sends-per-sec", "0", "--max-message-bytes", "1048576"],
          ...["--max-stream-buffer-bytes", String(LIMIT)],
        ],
      });
      const victim = await rawAgent(hub.url, hub.token, "victim");
      const sender = await rawAgent(hub.url, hub.token, "sender");
      const prompt = "\u20ac".repeat(BIG_PROMPT_CHARS);
      for (let i = 0; i < BIG_MESSAGES; i += 10) {
        await Promise.all(
          Array.from({ length: 10 }, () => sender.client.messages.send.mutate({ to: "victim", prompt })),
        );
      }
      const fdsBefore = fds(hub.pid);
      const before = rssKiB(hub.pid);
      const input = encodeURIComponent(JSON.stringify({ json: { lastEventId: null } }));
      const requests: ClientRequest[] = [];
      // Streams that never read: each response is paused as soon as it starts.
      await Promise.all(
        Array.from(
          { length: STALLED },
          () =>
            new Promise<void>((resolve, reject) => {
              const req = get(
                `${hub.url}/trpc/messages.inbox?input=${input}`,
                {
                  headers: {
                    authorization: `Bearer ${hub.token}`,
                    [AGENT_ID_HEADER]: victim.card.id,
                    [AGENT_TOKEN_HEADER]: victim.agentToken,
                  },
                },
                (res) => {
                  res.pause();
                  resolve();
                },
              );
              req.once("error", reject);
              requests.push(req);
            }),
        ),
      );
      // The hub cuts each stalled stream once it is LIMIT behind: its sockets are gone while the readers still sit.
      await waitFor(() => fds(hub.pid) <= fdsBefore, {
        what: "the hub to cut every stalled stream",
        timeoutMs: 60_000,
      });
      const grown = rssKiB(hub.pid) - before;
      const offered = (STALLED * BIG_MESSAGES * BIG_PROMPT_CHARS * 3) / 1024;
      // Without the limit this is several hundred MB; with it, STALLED × (limit + one event) ≈ 6 MB.
      assert.ok(
        grown < 64 * 1024,
        `hub RSS grew by ${grown} KiB for ${STALLED} stalled streams (${offered} KiB offered)`,
      );
      for (const req of requests) req.destroy();
      // The victim still gets every message once it reads.
      const seen = new Set<string>();
      const sub = victim.client.messages.inbox.subscribe(
        { lastEventId: null },
        { onData: ({ data }) => data.kind === "message" && seen.add(data.message.msg_id) },
      );
      await waitFor(() => seen.size === BIG_MESSAGES, {
        what: "every message on a fresh stream",
        timeoutMs: 30_000,
      });
      sub.unsubscribe();
    });

    it("a reader that stalls and then reads again is cut, resumes by Last-Event-ID and loses nothing", async () => {
      const hub = await world.startHub({
        project: "resume",
        runtime,
        args: [
          ...["--max-sends-per-sec", "0", "--max-message-bytes", "1048576"],
          ...["--max-stream-buffer-bytes", String(LIMIT)],
        ],
      });
      // Hold back the client's reads of its event stream until `release()`.
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let stalled = true;
      const realFetch = globalThis.fetch;
      let streamsOpened = 0;
      globalThis.fetch = async (input, init) => {
        const response = await realFetch(input, init);
        const accept = new Headers(init?.headers).get("accept");
        if (accept !== "text/event-stream" || !response.body) return response;
        streamsOpened++;
        if (!stalled) return response;
        const gate = new TransformStream<Uint8Array, Uint8Array>(
          {
            transform: async (chunk, controller) => {
              await released;
              controller.enqueue(chunk);
            },
          },
          { highWaterMark: 1 },
          { highWaterMark: 1 },
        );
        return new Response(response.body.pipeThrough(gate), {
          status: response.status,
          headers: response.headers,
        });
      };
      world.defer(() => {
        globalThis.fetch = realFetch;
      });
      const receiver = await world.connect(hub, "reader");
      const received: Message[] = [];
      receiver.onInbound((message) => received.push(message));
      await waitFor(() => streamsOpened >= 1, { what: "the stalled stream" });
      const sender = await rawAgent(hub.url, hub.token, "writer");
      const prompt = "\u20ac".repeat(BIG_PROMPT_CHARS);
      const sent = new Set<string>();
      // ~48 MB: more than the kernel's socket buffers take, so the hub's own buffer passes the limit.
      for (let i = 0; i < 80; i += 10) {
        const acks = await Promise.all(
          Array.from({ length: 10 }, (_, j) =>
            sender.client.messages.send.mutate({ to: "reader", prompt: `${i + j} ${prompt}` }),
          ),
        );
        for (const ack of acks) sent.add(ack.msg_id);
      }
      // The hub cuts the stream after a stall period without progress; then the reader reads again.
      const fdsWithStream = fds(hub.pid);
      await waitFor(() => fds(hub.pid) < fdsWithStream, {
        what: "the hub to cut the stalled stream",
        timeoutMs: 40_000,
      });
      stalled = false;
      release();
      await waitFor(() => received.length >= sent.size, {
        what: "every message after the stall",
        timeoutMs: 30_000,
      });
      assert.equal(received.length, sent.size, "no message handed to the app twice");
      assert.deepEqual(new Set(received.map((m) => m.msg_id)), sent);
      assert.ok(streamsOpened >= 2, "the client reconnected");
    });
  });

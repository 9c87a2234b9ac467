/**
 * How the SSE writer shares an event's bytes between streams: an event for
 * an agent's only stream is written as text of its own; one handed to
 * several streams (an agent with two streams, a peers change) is encoded
 * once and every stream writes the same bytes; a replay is shared by its
 * text. Real HubBackend, store and SSE writer in this process; the
 * transports record what they are given.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { tracked } from "@trpc/server";
import { HubBackend } from "../hub/backend/backend.ts";
import { SseStreams } from "../hub/http/sse-writer.ts";
import { openStore } from "../hub/store/store.ts";
import { mapFeed } from "../lib/push-feed.ts";
import { wireJson } from "../lib/wire-transformer.ts";
import { waitFor } from "./support/hub-harness.ts";
import { TEST_LIMITS } from "./support/hub-limits.ts";

type Chunk = string | Uint8Array;

describe("SSE frames shared between streams (real backend, store and writer, in process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pi-coms-frames-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("writes an only stream's event as text, and hands several streams one set of bytes", async () => {
    const backend = new HubBackend(await openStore("sqlite", dir), "p", TEST_LIMITS);
    const streams = new SseStreams({
      pingMs: Number.POSITIVE_INFINITY,
      maxBufferedBytes: 1 << 20,
      json: wireJson,
    });
    const card = async (name: string) => {
      const { card } = await backend.register({ name });
      return { id: card.id, name: card.name };
    };
    const [alice, bob, carol] = [await card("alice"), await card("bob"), await card("carol")];
    /** One inbox stream of `who` into the writer, as the router serves it; its chunks, after the opening event. */
    const open = (who: { id: string; name: string }, lastEventId: string | null = null) => {
      const chunks: Chunk[] = [];
      const feed = backend.inbox(who, lastEventId, undefined, { peers: true });
      streams.start(
        {
          write: (chunk) => void chunks.push(chunk),
          buffered: () => 0,
          end: () => {},
          cut: () => {},
          onDrain: () => {},
        },
        {
          kind: "sse",
          lastEventId,
          source: mapFeed(feed, (item) => tracked(item.id, item.event)),
          abort: new AbortController(),
          formatError: () => "",
        },
      );
      return chunks;
    };
    const text = (chunk: Chunk) => (typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
    const framed = (chunks: Chunk[], needle: string) => chunks.filter((c) => text(c).includes(needle));

    const bobs = open(bob);
    const carols = [open(carol), open(carol)];
    await backend.send(alice, { to: "bob", prompt: "for bob alone", hops: 0 });
    await backend.send(alice, { to: "carol", prompt: "for both of carol's streams", hops: 0 });
    await waitFor(() => framed(bobs, "for bob alone").length === 1, { what: "bob's message" });
    await waitFor(() => carols.every((c) => framed(c, "of carol's streams").length === 1), {
      what: "carol's message on both streams",
    });

    const [bobFrame] = framed(bobs, "for bob alone");
    assert.equal(typeof bobFrame, "string", "an only stream's event is text of its own");
    assert.match(text(bobFrame as Chunk), /^data: \{.*"for bob alone".*\}\nid: \S+\.\d+\n\n\n$/s);
    const [first, second] = carols.map((c) => framed(c, "of carol's streams")[0]);
    assert.ok(first instanceof Uint8Array, "an event for several streams is encoded once");
    assert.equal(first, second, "both streams write the same bytes");
    assert.match(text(first as Chunk), /^data: \{.*\}\nid: \S+\.\d+\n\n\n$/s);

    // A peers change goes to every stream: one set of bytes for all of them.
    await card("dave");
    const peers = (chunks: Chunk[]) => chunks.filter((c) => text(c).includes('"dave"'));
    await waitFor(() => [bobs, ...carols].every((c) => peers(c).length > 0), {
      what: "dave on every stream",
    });
    const daves = [bobs, ...carols].map((c) => peers(c)[0]);
    assert.ok(daves.every((d) => d instanceof Uint8Array && d === daves[0]));

    // Two streams opened later replay the same backlog: equal frames, shared by their text.
    const replays = [open(bob, null), open(bob, null)];
    await waitFor(() => replays.every((c) => framed(c, "for bob alone").length === 1), {
      what: "the replays",
    });
    const [a, b] = replays.map((c) => framed(c, "for bob alone")[0]);
    assert.ok(a instanceof Uint8Array && a === b, "a replay is shared by its text");
    assert.equal(text(a as Chunk), text(bobFrame as Chunk), "the replay is the frame bob's stream got live");
    streams.closeAll();
    await backend.close();
  });
});

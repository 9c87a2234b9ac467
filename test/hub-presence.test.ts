/**
 * Presence on a real hub while a crowd registers: streams that watch peers
 * get the final presence in a few coalesced events (not one per
 * registration) and miss no change; streams of clients that do not watch it
 * get none of that traffic; a hub client's peer book (what the plugin widget
 * shows) ends right.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentCard, InboxEvent } from "../contract/schemas.ts";
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../hub/http/auth.ts";
import { deserializeAnswer } from "../lib/wire-transformer.ts";
import { HubWorld, waitFor } from "./support/hub-harness.ts";
import { rawAgent } from "./support/hub-raw-client.ts";

const TOKEN = "presence-test-token-0123456789abcdef";

/** A raw inbox stream that keeps the presence it was told (deltas applied) and counts peers events. */
function watchStream(url: string, who: { id: string; agentToken: string }, peers: boolean | undefined) {
  const state = { names: new Map<string, string>(), peersEvents: 0, prompts: [] as string[], open: false };
  const controller = new AbortController();
  const input = peers === undefined ? { lastEventId: null } : { lastEventId: null, peers };
  const done = (async () => {
    const res = await fetch(
      `${url}/trpc/messages.inbox?input=${encodeURIComponent(JSON.stringify({ json: input }))}`,
      {
        headers: {
          authorization: `Bearer ${TOKEN}`,
          [AGENT_ID_HEADER]: who.id,
          [AGENT_TOKEN_HEADER]: who.agentToken,
          accept: "text/event-stream",
        },
        signal: controller.signal,
      },
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done: over } = await reader.read();
      if (over) return;
      buffer += decoder.decode(value, { stream: true });
      const frames = buffer.split("\n\n\n");
      buffer = frames.pop() ?? "";
      for (const frame of frames) {
        if (frame.startsWith("event: connected")) state.open = true;
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (!data || frame.startsWith("event:")) continue;
        const event = deserializeAnswer(JSON.parse(data)) as InboxEvent;
        if (event.kind === "message") state.prompts.push(event.message.prompt);
        if (event.kind !== "peers") continue;
        state.peersEvents++;
        if (!event.delta) state.names.clear();
        for (const id of event.removed ?? []) state.names.delete(id);
        for (const card of event.agents) state.names.set(card.id, card.name);
      }
    }
  })().catch(() => {});
  return { state, close: () => controller.abort(), done };
}

describe("presence while a crowd registers", { timeout: 120_000 }, () => {
  test("watchers get the final presence in few events; streams that do not watch get none", async () => {
    const w = new HubWorld({ PI_COMS_NET_AUTH_TOKEN: TOKEN });
    const streams: Array<ReturnType<typeof watchStream>> = [];
    try {
      const hub = await w.startHub({ project: "crowd" });
      const M = 4;
      const K = 150;
      const watchers = [];
      const quiet = [];
      for (let i = 0; i < M; i++) {
        const a = await rawAgent(hub.url, TOKEN, `watch${i}`);
        const stream = watchStream(hub.url, { id: a.card.id, agentToken: a.agentToken }, undefined);
        watchers.push({ agent: a, stream });
        const b = await rawAgent(hub.url, TOKEN, `quiet${i}`);
        quiet.push({
          agent: b,
          stream: watchStream(hub.url, { id: b.card.id, agentToken: b.agentToken }, false),
        });
      }
      streams.push(...watchers.map((x) => x.stream), ...quiet.map((x) => x.stream));
      await waitFor(() => streams.every((s) => s.state.open), { what: "every stream open" });
      // A hub client watching peers, as the plugin's widget does.
      const book = await w.connect(hub, { url: hub.url, name: "book" });
      let seen: AgentCard[] = [];
      book.onPeers((peers) => {
        seen = peers;
      });

      const crowd = await Promise.all(
        Array.from({ length: K }, (_, i) => rawAgent(hub.url, TOKEN, `crowd${i}`)),
      );
      // Changes after the storm must arrive too: one of the crowd leaves.
      const leaver = crowd[0] as (typeof crowd)[number];
      await leaver.client.agents.leave.mutate();

      for (const { agent, stream } of watchers) {
        // Cards of agents registered before this stream opened came by list, not by stream: check the rest.
        await waitFor(
          () =>
            crowd.slice(1).every((x) => stream.state.names.get(x.card.id) === x.card.name) &&
            !stream.state.names.has(leaver.card.id),
          { what: `${agent.card.name} to see the final presence`, timeoutMs: 30_000 },
        );
        assert.ok(
          stream.state.peersEvents < K / 2,
          `${agent.card.name}: ${stream.state.peersEvents} peers events for ${K} registrations`,
        );
      }
      await waitFor(
        () =>
          crowd.slice(1).every((x) => seen.some((card) => card.id === x.card.id)) &&
          !seen.some((card) => card.id === leaver.card.id),
        { what: "the hub client's peer book to end right", timeoutMs: 30_000 },
      );
      // A message sent now arrives after anything broadcast before it: the quiet streams got no presence.
      const sender = watchers[0]?.agent.client;
      for (const { agent } of quiet)
        await sender?.messages.send.mutate({ to: agent.card.name, prompt: "last" });
      for (const { agent, stream } of quiet) {
        await waitFor(() => stream.state.prompts.includes("last"), {
          what: `${agent.card.name} to get the message`,
        });
        assert.equal(stream.state.peersEvents, 0, `${agent.card.name} got presence it did not ask for`);
      }
    } finally {
      for (const stream of streams) stream.close();
      await w.dispose();
    }
  });
});

/**
 * Rate limits on a real hub process: a low per-agent send rate (1/s, burst 2)
 * and the lockout after repeated wrong hub tokens from one address.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { toComsError } from "../contract/errors.ts";
import { ulid } from "../contract/ids.ts";
import type { Message } from "../contract/schemas.ts";
import { HubWorld, raw, waitFor } from "./support/hub-harness.ts";

const worlds: HubWorld[] = [];
after(async () => {
  for (const world of worlds) await world.dispose();
});

describe("hub rate limits", () => {
  it("refuses a burst beyond the bucket with RATE_LIMITED, stores nothing, refills, and spares other agents", async () => {
    const world = new HubWorld();
    worlds.push(world);
    const hub = await world.startHub({ args: ["--max-sends-per-sec", "1"] });
    const bob = await world.connect(hub, "bob");
    const received: Message[] = [];
    bob.onInbound((message) => {
      received.push(message);
      void bob.settle(message.msg_id, { ok: true, text: "ok" });
    });
    const alice = await world.connect(hub, "alice");
    const carol = await world.connect(hub, "carol");

    const ids = Array.from({ length: 12 }, () => ulid());
    const results = await Promise.allSettled(
      ids.map((msg_id, i) => alice.send({ to: "bob", prompt: `burst ${i}`, msg_id })),
    );
    const sent = ids.filter((_, i) => results[i]?.status === "fulfilled");
    const refused = results.flatMap((result, i) =>
      result.status === "rejected" ? [{ id: ids[i] as string, error: toComsError(result.reason) }] : [],
    );
    assert.ok(sent.length >= 2, `the burst of 2 goes through (sent ${sent.length})`);
    assert.ok(refused.length >= 1, "sends beyond the bucket are refused");
    for (const { error } of refused) {
      assert.equal(error.code, "RATE_LIMITED", error.message);
      assert.match(error.message, /retry in \d+ ms/);
    }

    // The accepted ones arrive; the refused ones were never stored.
    await waitFor(() => received.length >= sent.length, { what: "the accepted sends to arrive" });
    for (const { id } of refused) {
      const outcome = await alice.get(id);
      assert.equal(outcome.state, "error", JSON.stringify(outcome));
      assert.equal(outcome.state === "error" && outcome.code, "EXPIRED", "no such message on the hub");
    }

    // Another agent has its own bucket.
    await carol.send({ to: "bob", prompt: "from carol" });

    // After the refill alice may send again (polled, bounded).
    const later = await waitFor(
      async () => {
        try {
          return await alice.send({ to: "bob", prompt: "after the refill" });
        } catch (error) {
          assert.equal(toComsError(error).code, "RATE_LIMITED");
          return undefined;
        }
      },
      { what: "a send after the refill", timeoutMs: 15_000, intervalMs: 200 },
    );
    await waitFor(() => received.some((m) => m.msg_id === later.msg_id), {
      what: "the later send to arrive",
    });
    const refusedIds = new Set(refused.map((r) => r.id));
    assert.ok(!received.some((m) => refusedIds.has(m.msg_id)), "no refused send was delivered");
    assert.ok(received.some((m) => m.from === "carol"));
  });

  for (const runtime of ["node", "bun"] as const) {
    it(`answers 429 after repeated wrong tokens from one address, then lets the right token in again (${runtime})`, async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const wrong = "wrong-token-do-not-log-0123456789";
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++)
        statuses.push((await raw(hub.url, "/trpc/agents.list", { token: wrong })).status);
      assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
      assert.deepEqual(statuses.slice(20), Array(5).fill(429));

      // The lockout refuses wrong tokens only: the right one is served at once, from the same address.
      // Past the token check, a path outside /trpc is a 404 (a refused token would be a 401 or 429).
      const served = await raw(hub.url, "/no-such-route", { token: hub.token });
      assert.equal(served.status, 404, `the right token during the lockout: ${served.text}`);
      const limited = await fetch(new URL("/trpc/agents.list", hub.url), {
        headers: { authorization: `Bearer ${wrong}` },
      });
      const body = await limited.text();
      assert.equal(limited.status, 429, "a wrong token during the lockout");
      assert.match(limited.headers.get("retry-after") ?? "", /^\d+$/);
      assert.match(body, /too many wrong hub tokens/);
      assert.match(body, /RATE_LIMITED/);

      const after = await waitFor(
        async () => {
          const { status } = await raw(hub.url, "/trpc/agents.list", { token: wrong });
          return status === 429 ? undefined : status;
        },
        { what: "the lockout to end", timeoutMs: 20_000, intervalMs: 250 },
      );
      assert.equal(after, 401, "after the cool-down a wrong token is a plain 401 again");
      // A typed client gets in too, and the wrong token never reached the hub's output.
      const client = await world.connect(hub, "after-lockout");
      assert.ok(Array.isArray(await client.list()), "a registered client can call the hub");
      assert.doesNotMatch(hub.output(), new RegExp(wrong));
    });

    it(`a wrong token every ~50 ms from the same address never keeps the right token out (${runtime})`, async () => {
      const world = new HubWorld();
      worlds.push(world);
      const hub = await world.startHub({ runtime });
      const client = await world.connect(hub, "steady");
      const wrong = "wrong-token-do-not-log-0123456789";
      const attacker: number[] = [];
      let attacking = true;
      const attack = (async () => {
        while (attacking) {
          attacker.push((await raw(hub.url, "/trpc/agents.list", { token: wrong })).status);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      // Let the attacker trip the lockout first, so every call below lands inside it.
      await waitFor(() => attacker.includes(429), {
        what: "the attacker to be locked out",
        timeoutMs: 20_000,
      });
      const failures: string[] = [];
      for (let i = 0; i < 40; i++) {
        try {
          await client.list();
          const { status } = await raw(hub.url, "/no-such-route", { token: hub.token });
          if (status !== 404) failures.push(`raw call ${i}: ${status}`);
        } catch (error) {
          failures.push(`call ${i}: ${toComsError(error).code} ${toComsError(error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      attacking = false;
      await attack;
      assert.deepEqual(failures, [], "every right-token call is served");
      assert.ok(attacker.filter((status) => status === 429).length >= 10, `attacker: ${attacker.join(",")}`);
      assert.ok(attacker.every((status) => status === 401 || status === 429));
    });
  }
});

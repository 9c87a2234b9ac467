import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ComsError, comsError, toComsError } from "../contract/errors.ts";
import { ulid, ulidTime } from "../contract/ids.ts";
import { comsRouter } from "../contract/router.ts";
import { AgentCard, CardPatch, MsgId, SendInput } from "../contract/schemas.ts";

describe("contract", () => {
  it("ulids are valid, unique and sorted even within one millisecond", () => {
    const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    for (const id of ids) MsgId.parse(id);
    assert.equal(ulidTime(ulid(1_700_000_000_123)), 1_700_000_000_123);
  });

  it("rejects bad names, colours and oversized prompts", () => {
    assert.throws(() => SendInput.parse({ to: "../etc", prompt: "x" }));
    assert.throws(() => SendInput.parse({ to: "ok", prompt: "x".repeat(300 * 1024) }));
    assert.throws(() =>
      AgentCard.parse({ id: ulid(), name: "a", project: "p", color: "red", started_at: 1 }),
    );
    assert.equal(SendInput.parse({ to: "coder", prompt: "hi" }).hops, 0);
  });

  it("a card patch carries only what it sets: the queue depth alone does not blank the model", () => {
    assert.deepEqual(CardPatch.parse({ queue_depth: 2 }), { queue_depth: 2 });
    assert.deepEqual(CardPatch.parse({ model: "m", context_used_pct: null }), {
      model: "m",
      context_used_pct: null,
    });
    assert.throws(() => CardPatch.parse({ context_used_pct: 101 }));
    assert.throws(() => CardPatch.parse({ queue_depth: -1 }));
  });

  it("carries the coms code through the error formatter", async () => {
    const caller = comsRouter.createCaller({
      caller: null,
      backend: new Proxy({} as never, {
        get: () => async () => {
          throw comsError("UNKNOWN_PEER", "no agent named ghost");
        },
      }),
    });
    await assert.rejects(caller.agents.list({ include_explicit: false }), (error: unknown) => {
      assert.equal(toComsError(error).code, "UNKNOWN_PEER");
      return true;
    });
    const shaped = comsRouter._def._config.errorFormatter({
      error: comsError("HOP_LIMIT", "hop limit reached"),
      shape: { message: "hop limit reached", code: -32600, data: { code: "BAD_REQUEST", httpStatus: 400 } },
      type: "mutation",
      path: "messages.send",
      input: undefined,
      ctx: undefined,
    } as never) as { data: { coms_code: string } };
    assert.equal(shaped.data.coms_code, "HOP_LIMIT");
    assert.equal(new ComsError("TIMEOUT", "x").code, "TIMEOUT");
  });
});

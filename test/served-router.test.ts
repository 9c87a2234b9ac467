import assert from "node:assert/strict";
import { test } from "node:test";
import type { TRPCError } from "@trpc/server";
import { type ComsBackend, comsRouter } from "../contract/router.ts";
import { servedRouter } from "../lib/served-router.ts";

type Call = (opts: Record<string, unknown>) => Promise<unknown>;
const procedures = servedRouter(comsRouter)._def.procedures as unknown as Record<string, Call>;
const original = comsRouter._def.procedures as unknown as Record<string, Call>;

const goodCard = {
  id: "01JABCDEFGHJKMNPQRSTVWXYZ0",
  name: "a",
  purpose: "",
  model: "",
  explicit: false,
  project: "p",
  context_used_pct: null,
  queue_depth: 0,
  status: "online" as const,
  started_at: 1,
};

function call(path: string, type: string, backend: Partial<ComsBackend>, caller: unknown, input?: unknown) {
  const procedure = procedures[path] as Call;
  return procedure({
    path,
    type,
    ctx: { backend, caller },
    getRawInput: async () => input,
    signal: undefined,
  });
}

test("served procedures run the router's middlewares: output parser, auth, input parser", async () => {
  // The hub's own chain runner is what runs here, not tRPC's caller.
  assert.notEqual(procedures["agents.card"], original["agents.card"]);
  const caller = { id: goodCard.id, name: "a" };
  assert.deepEqual(
    await call("agents.card", "query", { card: async () => ({ ...goodCard }) }, caller),
    goodCard,
  );
  await assert.rejects(
    call("agents.card", "query", { card: async () => ({ ...goodCard, status: "bogus" }) as never }, caller),
    (error: TRPCError) => error.code === "INTERNAL_SERVER_ERROR",
  );
  const sent: unknown[] = [];
  const backend = {
    send: async (_caller: unknown, input: unknown) => {
      sent.push(input);
      return {} as never;
    },
  };
  await assert.rejects(
    call("messages.send", "mutation", backend, null, { to: "b", prompt: "x" }),
    (error: TRPCError) => error.code === "UNAUTHORIZED",
  );
  await assert.rejects(
    call("messages.send", "mutation", backend, caller, { to: 5 }),
    (error: TRPCError) => error.code === "BAD_REQUEST",
  );
  assert.equal(sent.length, 0);
});

test("served validators answer exactly as tRPC's own: same data, same error, same cause", async () => {
  const caller = { id: goodCard.id, name: "a" };
  const ack = { msg_id: goodCard.id, to: "b", to_id: goodCard.id, accepted_at: 1, queue_depth: 0 };
  const backend = {
    send: async (_caller: unknown, input: { prompt: string }) =>
      (input.prompt === "bad ack" ? { ...ack, queue_depth: -1 } : { ...ack, extra: 1 }) as never,
  };
  const cases: Array<[string, string, unknown]> = [
    ["messages.send", "mutation", { to: "b", prompt: "x", hops: 2 }],
    ["messages.send", "mutation", { to: "b", prompt: "bad ack" }],
    ["messages.send", "mutation", { to: 5 }],
    ["messages.send", "mutation", { to: "b", prompt: "", msg_id: "nope" }],
    ["messages.send", "mutation", undefined],
    ["messages.outcomes", "subscription", { after: -1 }],
  ];
  const run = async (procedure: Call, path: string, type: string, input: unknown) => {
    try {
      const data = await procedure({ path, type, ctx: { backend, caller }, getRawInput: async () => input });
      return { data };
    } catch (error) {
      const { code, message, cause } = error as TRPCError;
      return {
        code,
        message,
        cause: cause?.constructor.name,
        issues: (cause as { issues?: unknown })?.issues,
      };
    }
  };
  for (const [path, type, input] of cases) {
    const served = await run(procedures[path] as Call, path, type, input);
    const own = await run(original[path] as Call, path, type, input);
    assert.deepEqual(served, own, `${path} ${JSON.stringify(input)}`);
  }
});

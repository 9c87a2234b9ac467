/**
 * Poison isolation on the hub: a message (or reply) the hub cannot encode for
 * an inbox stream must never stop that stream. The poison goes straight into
 * the backend of a hub served in-process over the runtime's real HTTP adapter
 * (the door would refuse it), and real clients read over HTTP: the poison
 * ends with a BAD_INPUT outcome for its sender, and the next messages arrive.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Outcome } from "../contract/schemas.ts";
import { BUN, HubWorld, ROOT, type Runtime } from "./support/hub-harness.ts";

const RUN = join(ROOT, "test", "support", "hub-poison-run.ts");

interface Result {
  poisonOutcome: Outcome;
  nextOutcome: Outcome;
  lastOutcome: Outcome;
  received: string[];
}

describe("a poison message never stops an inbox stream", () => {
  let world: HubWorld;
  before(() => {
    world = new HubWorld();
  });
  after(() => world.dispose());

  const run = async (runtime: Runtime, kind: "deep" | "throws" | "reply"): Promise<Result> => {
    const bin = runtime === "bun" ? BUN : process.execPath;
    const { code, out } = await world.run(bin, [RUN, kind, join(world.dir, `${runtime}-${kind}`)]);
    assert.equal(code, 0, out);
    const line = out.split("\n").find((l) => l.startsWith("{"));
    assert.ok(line, out);
    return JSON.parse(line) as Result;
  };

  const check = (result: Result, what: RegExp) => {
    const poison = result.poisonOutcome;
    assert.equal(poison.state, "error", JSON.stringify(poison));
    assert.equal(poison.state === "error" && poison.code, "BAD_INPUT");
    assert.match(poison.state === "error" ? poison.message : "", what);
    assert.equal(result.nextOutcome.state === "reply" && result.nextOutcome.text, "re: after the poison");
    assert.equal(result.lastOutcome.state === "reply" && result.lastOutcome.text, "re: and one more");
    assert.ok(result.received.includes("after the poison") && result.received.includes("and one more"));
  };

  it("Node: a response_schema nested 2,000 deep (the encoder overflows its stack)", async () => {
    const result = await run("node", "deep");
    check(result, /undeliverable: the hub cannot encode this message for rx's inbox/);
    assert.ok(!result.received.includes("poison"));
  });

  it("Node: a schema that throws when serialized", async () => {
    check(await run("node", "throws"), /cannot be serialized/);
  });

  it("Node: a reply the hub cannot encode for the sender's stream", async () => {
    check(await run("node", "reply"), /undeliverable reply: rx answered/);
  });

  it("Bun: a schema that throws when serialized", async () => {
    check(await run("bun", "throws"), /cannot be serialized/);
  });
});

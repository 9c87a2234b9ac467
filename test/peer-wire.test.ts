/**
 * Hostile and broken input on a live peer socket, written with raw node:net:
 * malformed and oversized frames, unknown procedures, wrong types, a send
 * without (or with a forged) handshake. Each gets a clear error, the
 * connection and the peer survive, and nothing changes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ulid } from "../contract/ids.ts";
import { MAX_FRAME_BYTES } from "../peer/ipc.ts";
import { type PeerProcess, Sandbox } from "./support/p2p-harness.ts";
import { comsCode, RawConnection } from "./support/p2p-raw.ts";

type Ack = { msg_id: string };

describe("p2p wire", () => {
  const box = new Sandbox();
  let target: { proc: PeerProcess; self: { id: string; name: string }; socket: string };
  let friend: { proc: PeerProcess; self: { id: string; name: string }; socket: string };
  const raws: RawConnection[] = [];
  const open = async () => {
    const raw = await RawConnection.open(target.socket);
    raws.push(raw);
    return raw;
  };

  before(async () => {
    target = await box.peer({ name: "target", project: "wire" });
    friend = await box.peer({ name: "friend", project: "wire" });
    await target.proc.call("autoReply", { on: true });
  });
  after(async () => {
    for (const raw of raws) raw.close();
    await box.cleanup();
  });

  /** The peer still serves a real client, and accepted nothing from the bad frames. */
  async function stillServes(): Promise<void> {
    const ack = await friend.proc.call<Ack>("send", { input: { to: "target", prompt: "still there?" } });
    const outcome = await friend.proc.call<{ text: string }>("await", {
      msg_id: ack.msg_id,
      timeoutMs: 10_000,
    });
    assert.equal(outcome.text, "echo: still there?");
    const inbound = target.proc.events.filter((e) => e.event === "inbound");
    // Only verified agents ever got a message in: "third" and "fourth" send some on purpose below.
    assert.ok(
      inbound.every((e) => ["friend", "third", "fourth"].includes((e.message as { from: string }).from)),
    );
    assert.ok(!inbound.some((e) => /sneaky/.test((e.message as { prompt: string }).prompt)));
  }

  it("answers a well-formed query without any handshake (the card is the ping)", async () => {
    const raw = await open();
    raw.request(1, "query", "agents.card");
    const frame = await raw.next((f) => f.data.id === 1);
    assert.equal(frame.data.k, "data");
    assert.equal((frame.data.data as { json: { name: string } }).json.name, "target");
  });

  it("malformed JSON: an error frame, and the same connection keeps working", async () => {
    const raw = await open();
    raw.write("{this is not json\f");
    const error = await raw.next((f) => f.data.k === "error");
    assert.equal(error.data.id, null);
    assert.equal(comsCode(error), "BAD_INPUT");
    assert.match(error.data.error?.json?.message ?? "", /malformed frame/);
    raw.request(2, "query", "agents.card");
    assert.equal((await raw.next((f) => f.data.id === 2)).data.k, "data");
    await stillServes();
  });

  it("a frame beginning with a NUL byte: an error frame, and the same connection keeps working", async () => {
    const raw = await open();
    raw.write(
      `\u0000${JSON.stringify({ type: "coms", data: { k: "req", id: 7, type: "query", path: "agents.card" } })}\f`,
    );
    const error = await raw.next((f) => f.data.k === "error");
    assert.equal(comsCode(error), "BAD_INPUT");
    assert.match(error.data.error?.json?.message ?? "", /malformed frame/);
    // A NUL alone, then a good frame in the same write: the good one is still answered.
    raw.write(
      `\u0000\f${JSON.stringify({ type: "coms", data: { k: "req", id: 8, type: "query", path: "agents.card" } })}\f`,
    );
    assert.equal(comsCode(await raw.next((f) => f.data.k === "error")), "BAD_INPUT");
    assert.equal((await raw.next((f) => f.data.id === 8)).data.k, "data");
    assert.equal(raw.closed, false);
    await stillServes();
  });

  it("valid JSON of the wrong shape: rejected with the request id when there is one", async () => {
    const raw = await open();
    raw.write(`${JSON.stringify([1, 2, 3])}\f`);
    assert.equal(comsCode(await raw.next((f) => f.data.k === "error")), "BAD_INPUT");
    raw.write(`${JSON.stringify({ type: "coms", data: { k: "req", id: 7, type: "delete", path: "x" } })}\f`);
    const wrongType = await raw.next((f) => f.data.id === 7);
    assert.equal(comsCode(wrongType), "BAD_INPUT");
    assert.match(wrongType.data.error?.json?.message ?? "", /type/);
    raw.write(`${JSON.stringify({ type: "somethingElse", data: { id: 8 } })}\f`);
    assert.equal(comsCode(await raw.next((f) => f.data.id === 8)), "BAD_INPUT");
    raw.write(`${JSON.stringify({ type: "connect", data: {} })}\f`);
    assert.equal(comsCode(await raw.next((f) => f.data.k === "error")), "BAD_INPUT");
    raw.write(`${JSON.stringify({ type: "constructor", data: {} })}\f`);
    assert.equal(comsCode(await raw.next((f) => f.data.k === "error")), "BAD_INPUT");
    raw.request(9, "query", "agents.card");
    assert.equal((await raw.next((f) => f.data.id === 9)).data.k, "data");
    await stillServes();
  });

  it("unknown procedure and wrong procedure type: BAD_INPUT", async () => {
    const raw = await open();
    raw.request(10, "query", "agents.nope");
    const unknown = await raw.next((f) => f.data.id === 10);
    assert.equal(comsCode(unknown), "BAD_INPUT");
    raw.request(11, "mutation", "agents.card");
    assert.equal((await raw.next((f) => f.data.id === 11)).data.k, "error");
    raw.request(12, "query", "__proto__");
    assert.equal((await raw.next((f) => f.data.id === 12)).data.k, "error");
  });

  it("a send without a handshake is refused with UNAUTHORIZED; a forged token too", async () => {
    const raw = await open();
    raw.request(20, "mutation", "messages.send", { json: { to: "target", prompt: "sneaky" } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 20)), "UNAUTHORIZED");
    raw.request(21, "mutation", "agents.hello", {
      json: { id: friend.self.id, agent_token: "f".repeat(43) },
    });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 21)), "UNAUTHORIZED");
    raw.request(22, "mutation", "agents.hello", { json: { id: ulid(), agent_token: "f".repeat(43) } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 22)), "UNAUTHORIZED");
    raw.request(23, "mutation", "messages.send", { json: { to: "target", prompt: "sneaky" } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 23)), "UNAUTHORIZED");
    raw.request(24, "query", "messages.get", { json: { msg_id: ulid() } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 24)), "UNAUTHORIZED");
    await stillServes();
  });

  it("outcomes are shown only to the verified sender of the message", async () => {
    const third = await box.peer({ name: "third", project: "wire" });
    const entryFile = join(box.env.PI_COMS_DIR as string, "projects", "wire", "agents", "third.json");
    const token = (JSON.parse(readFileSync(entryFile, "utf8")) as { token: string }).token;
    const ack = await friend.proc.call<Ack>("send", { input: { to: "target", prompt: "private" } });
    await friend.proc.call("await", { msg_id: ack.msg_id, timeoutMs: 10_000 });
    const raw = await open();
    raw.request(70, "mutation", "agents.hello", { json: { id: third.self.id, agent_token: token } });
    assert.equal((await raw.next((f) => f.data.id === 70)).data.k, "data");
    raw.request(71, "query", "messages.get", { json: { msg_id: ack.msg_id } });
    const refused = await raw.next((f) => f.data.id === 71);
    assert.equal(comsCode(refused), "BAD_INPUT");
    assert.doesNotMatch(JSON.stringify(refused), /echo: private/);
    raw.request(72, "subscription", "messages.watch", { json: { msg_id: ack.msg_id } });
    const watched = await raw.next((f) => f.data.id === 72 && f.data.k === "error");
    assert.equal(comsCode(watched), "BAD_INPUT");
    // A message sent by this identity is visible to it.
    raw.request(73, "mutation", "messages.send", { json: { to: "target", prompt: "mine", hops: 0 } });
    const sent = await raw.next((f) => f.data.id === 73);
    const msgId = (sent.data.data as { json: { msg_id: string } }).json.msg_id;
    raw.request(74, "query", "messages.get", { json: { msg_id: msgId } });
    assert.equal((await raw.next((f) => f.data.id === 74)).data.k, "data");
  });

  it("the outcome stream carries only the caller's own outcomes and resumes after a seq", async () => {
    const fourth = await box.peer({ name: "fourth", project: "wire" });
    const entryFile = join(box.env.PI_COMS_DIR as string, "projects", "wire", "agents", "fourth.json");
    const token = (JSON.parse(readFileSync(entryFile, "utf8")) as { token: string }).token;
    const others = await friend.proc.call<Ack>("send", { input: { to: "target", prompt: "not yours" } });
    await friend.proc.call("await", { msg_id: others.msg_id, timeoutMs: 10_000 });
    const stranger = await open();
    stranger.request(80, "subscription", "messages.outcomes", { json: { after: 0 } });
    assert.equal(comsCode(await stranger.next((f) => f.data.id === 80)), "UNAUTHORIZED");

    const raw = await open();
    raw.request(81, "mutation", "agents.hello", { json: { id: fourth.self.id, agent_token: token } });
    assert.equal((await raw.next((f) => f.data.id === 81)).data.k, "data");
    type Event = { seq: number; outcome: { msg_id: string; state: string } };
    const events = (frame: { data: { data?: unknown } }) => (frame.data.data as { json: Event[] }).json;
    const sendOne = async (id: number, prompt: string) => {
      raw.request(id, "mutation", "messages.send", { json: { to: "target", prompt, hops: 0 } });
      return ((await raw.next((f) => f.data.id === id)).data.data as { json: Ack }).json.msg_id;
    };
    const first = await sendOne(82, "first");
    // Opened after the reply: the missed changes are replayed, in order, and nobody else's.
    raw.request(83, "subscription", "messages.outcomes", { json: { after: 0 } });
    const seen: Event[] = [];
    while (!seen.some((e) => e.outcome.state === "reply")) {
      seen.push(...events(await raw.next((f) => f.data.id === 83 && f.data.k === "data")));
    }
    assert.ok(seen.every((e) => e.outcome.msg_id === first));
    assert.deepEqual(
      seen.map((e) => e.seq),
      seen.map((e) => e.seq).sort((a, b) => a - b),
    );
    const last = Math.max(...seen.map((e) => e.seq));
    raw.write(`${JSON.stringify({ type: "coms", data: { k: "stop", id: 83 } })}\f`);
    assert.equal((await raw.next((f) => f.data.id === 83 && f.data.k === "stopped")).data.k, "stopped");

    // Resumed after the last seq seen: only what is new.
    raw.request(84, "subscription", "messages.outcomes", { json: { after: last } });
    await raw.next((f) => f.data.id === 84 && f.data.k === "started");
    const second = await sendOne(85, "second");
    const resumed: Event[] = [];
    while (!resumed.some((e) => e.outcome.state === "reply")) {
      resumed.push(...events(await raw.next((f) => f.data.id === 84 && f.data.k === "data")));
    }
    assert.ok(resumed.every((e) => e.outcome.msg_id === second && e.seq > last));
    raw.request(86, "subscription", "messages.outcomes", { json: { after: -1 } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 86)), "BAD_INPUT");
  });

  it("wrong input types are rejected by the procedure's schema", async () => {
    const raw = await open();
    raw.request(30, "query", "agents.list", { json: { include_explicit: "yes" } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 30)), "BAD_INPUT");
    raw.request(31, "query", "agents.list", { json: 1, meta: { values: ["bigint"] } });
    assert.equal((await raw.next((f) => f.data.id === 31)).data.k, "error");
    raw.write(
      `${JSON.stringify({ type: "coms", data: { k: "req", id: 33, type: "query", path: "agents.list", input: { json: {}, meta: { values: { "__proto__.polluted": ["undefined"] } } } } })}\f`,
    );
    assert.equal(comsCode(await raw.next((f) => f.data.id === 33)), "BAD_INPUT");
  });

  it("procedures a peer does not serve answer BAD_INPUT", async () => {
    const raw = await open();
    raw.request(40, "mutation", "agents.register", { json: { name: "x" } });
    assert.equal(comsCode(await raw.next((f) => f.data.id === 40)), "BAD_INPUT");
  });

  it("an oversized frame: TOO_LARGE, then the stream resynchronises", async () => {
    const raw = await open();
    const huge = "x".repeat(MAX_FRAME_BYTES + 1024);
    raw.write(`${JSON.stringify({ type: "coms", data: { k: "req", id: 50, type: "query", path: huge } })}\f`);
    const error = await raw.next((f) => f.data.k === "error", 15_000);
    assert.equal(comsCode(error), "TOO_LARGE");
    raw.request(51, "query", "agents.card");
    assert.equal((await raw.next((f) => f.data.id === 51, 15_000)).data.k, "data");
    assert.equal(raw.closed, false);
    await stillServes();
  });

  it("a stop for an unknown subscription and a duplicate id change nothing", async () => {
    const raw = await open();
    raw.write(`${JSON.stringify({ type: "coms", data: { k: "stop", id: 999 } })}\f`);
    raw.request(60, "query", "agents.card");
    assert.equal((await raw.next((f) => f.data.id === 60)).data.k, "data");
  });
});

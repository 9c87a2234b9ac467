/**
 * Run under Node or Bun: a hub in this process on the runtime's own HTTP
 * adapter, a poison message put straight into its backend (past the door,
 * which would refuse it), then a normal message, both read by real clients
 * over HTTP. Prints the outcomes and what the recipient received, as JSON.
 * argv: <deep|throws|reply> <dir for the hub's files> (reply: the poison is in
 * the recipient's answer, so it is the sender's stream that cannot take it)
 */
import { connectHub } from "../../hub/client/hub-client.ts";
import { startHubServer } from "../../hub/server.ts";

const [kind, dir] = process.argv.slice(2) as ["deep" | "throws" | "reply", string];
const env = { PATH: process.env.PATH, HOME: dir, PI_COMS_NET_DIR: dir };

/** A schema the hub cannot encode for the stream: nested past the encoder's stack, or throwing once read twice. */
function poison(): Record<string, unknown> {
  if (kind !== "throws") {
    let schema: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 2000; i++) schema = { a: schema };
    return schema;
  }
  let reads = 0;
  const schema: Record<string, unknown> = {};
  Object.defineProperty(schema, "type", {
    enumerable: true,
    get() {
      // The first read is the hub's own size check at send; the stream's encoder is the second.
      if (++reads > 1) throw new Error("this value cannot be serialized");
      return "string";
    },
  });
  return schema;
}

const hub = await startHubServer({ project: "poison", store: "memory", env });
const connect = (name: string) =>
  connectHub({ url: hub.url, token: hub.token, project: "poison", name, env });
const rx = await connect("rx");
const tx = await connect("tx");
const received: string[] = [];
rx.onInbound((message) => {
  received.push(message.prompt);
  if (message.prompt === "poison") {
    const caller = { id: rx.self.id, name: rx.self.name };
    const result = { ok: true as const, text: "poisoned reply", value: poison() };
    void hub.backend.settle(caller, { msg_id: message.msg_id, result });
  } else void rx.settle(message.msg_id, { ok: true, text: `re: ${message.prompt}` });
});
const caller = { id: tx.self.id, name: tx.self.name };
const bad =
  kind === "reply"
    ? await tx.send({ to: "rx", prompt: "poison" })
    : await hub.backend.send(caller, { to: "rx", prompt: "poison", hops: 0, response_schema: poison() });
const good = await tx.send({ to: "rx", prompt: "after the poison" });
const poisonOutcome = await tx.await(bad.msg_id, { timeoutMs: 8_000 });
const nextOutcome = await tx.await(good.msg_id, { timeoutMs: 8_000 });
const again = await tx.send({ to: "rx", prompt: "and one more" });
const lastOutcome = await tx.await(again.msg_id, { timeoutMs: 8_000 });
process.stdout.write(`${JSON.stringify({ poisonOutcome, nextOutcome, lastOutcome, received })}\n`);
await Promise.all([rx.close(), tx.close()]);
await hub.close();
process.exit(0);

/**
 * Test fixture: runs one P2PNode in this process, driven over stdin/stdout
 * with JSON lines. Commands: {"id":1,"op":"start","opts":{...}} first, then
 * send / get / await / list / settle / updateCard / self / close, and
 * `autoReply` (settle every inbound message with "echo: <prompt>") or
 * `holdInbound` (keep them for explicit settle). Answers are
 * {"id":1,"ok":true,"result":...} or {"id":1,"ok":false,"code":...,"message":...};
 * events are {"event":"inbound","message":...} and {"event":"peers","peers":[...]}.
 */
import { createInterface } from "node:readline";
import { toComsError } from "../../contract/errors.ts";
import type { Message } from "../../contract/schemas.ts";
import { type P2PNode, startP2P } from "../../peer/node.ts";

let node: P2PNode | undefined;
let autoReply = false;
/** Benchmarks turn the per-message inbound event off: it is fixture overhead, not transport. */
let quiet = false;
const aborts = new Map<string, AbortController>();

const write = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

function onInbound(message: Message): void {
  if (!quiet) write({ event: "inbound", message });
  if (autoReply && node) void node.settle(message.msg_id, { ok: true, text: `echo: ${message.prompt}` });
}

type Command = { id: number; op: string; [key: string]: unknown };

async function run(cmd: Command): Promise<unknown> {
  if (cmd.op === "start") {
    node = await startP2P({ ...(cmd.opts as object), env: process.env });
    node.onInbound(onInbound);
    node.onPeers((peers) => write({ event: "peers", peers }));
    return { self: node.self, socket: node.socketPath, pid: process.pid };
  }
  if (!node) throw new Error("start first");
  switch (cmd.op) {
    case "self":
      return node.self;
    case "connections":
      return node.inboundConnections();
    case "list":
      return node.list({ include_explicit: cmd.include_explicit === true });
    case "send":
      return node.send(cmd.input as never);
    case "get":
      return node.get(cmd.msg_id as string);
    case "await": {
      const controller = new AbortController();
      if (typeof cmd.abortKey === "string") aborts.set(cmd.abortKey, controller);
      return node.await(cmd.msg_id as string, {
        timeoutMs: cmd.timeoutMs as number | undefined,
        signal: controller.signal,
      });
    }
    case "abort":
      aborts.get(cmd.abortKey as string)?.abort();
      return true;
    case "settle":
      await node.settle(cmd.msg_id as string, cmd.result as never);
      return true;
    case "autoReply":
      autoReply = cmd.on !== false;
      quiet = cmd.quiet === true;
      return true;
    case "updateCard":
      node.updateCard(cmd.patch as never);
      return node.self;
    case "close":
      await node.close();
      return true;
    case "exit":
      setImmediate(() => process.exit(0));
      return true;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let cmd: Command;
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  run(cmd).then(
    (result) => write({ id: cmd.id, ok: true, result: result ?? null }),
    (error) => {
      const failure = toComsError(error);
      write({ id: cmd.id, ok: false, code: failure.code, message: failure.message });
    },
  );
});
lines.on("close", () => {
  void (node?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});

/**
 * The model's tools: one table for every front end (pi's `coms_*` and
 * `coms_net_*` tools, the MCP bridge's tools). Each entry has its name
 * suffix, description, parameter schema (the contract's zod schemas, turned
 * into JSON Schema by `toParameters`) and what it does against a ToolHost:
 * the front end supplies the client and the parts that differ (how a reply
 * to a peer is taken, what cuts a wait short). No pi and no MCP here.
 */
import { z } from "zod";
import type { ComsClient } from "../contract/client.ts";
import { compileResponseSchema } from "../contract/response-schema.ts";
import { ListInput, MsgRef, type Outcome, SendInput } from "../contract/schemas.ts";
import type { SystemKind, ToolSuffix } from "./names.ts";
import type { InboundView } from "./peer-text.ts";

const MAX_WAIT_MS = 24 * 60 * 60 * 1000;

/** How a front end's texts name things: the tool prefix, the system, and which front end it is. */
export interface ToolNaming {
  /** `coms` gives `coms_send`, `coms_await`, ... */
  prefix: string;
  /** The system as the model is told it, e.g. "P2P /coms". */
  label: string;
  /** pi takes a single prompt's reply from the final message; over MCP every reply is a tool call. */
  frontEnd: "pi" | "mcp";
}

export interface ToolResult {
  text: string;
  details: Record<string, unknown>;
  /** The model sees an error result (the message ended badly, or nothing was sent). */
  isError?: boolean;
}

/** What a reply tool call did. */
export interface ReplyDone {
  ok: boolean;
  to: string;
  text: string;
  details: Record<string, unknown>;
}

/** What a front end lends the tools for one call. */
export interface ToolHost {
  readonly client: ComsClient;
  readonly system: SystemKind;
  readonly project: string;
  readonly naming: ToolNaming;
  /** Recipient of a message this agent sent, if remembered. */
  sentTo(msgId: string): string | undefined;
  rememberSent(msgId: string, to: string): void;
  /** The peer prompts being answered now: a send made meanwhile continues their chain (hops). */
  chain(): { hops: number; chain_id?: string };
  /** Answer one peer prompt; throws (sending nothing) when it cannot be answered so. */
  reply(msgId: string, text: string): Promise<ReplyDone>;
  /** Hear peer prompts that should cut a blocking wait short; returns an unsubscribe function. */
  watchForPrompts(cut: (views: InboundView[]) => void): () => void;
  /** A wait for `msgId` begins (pi forgets an older interrupted wait for it). */
  awaitStarted?(msgId: string): void;
  /** The result of a wait that peer prompts cut short. */
  cutShort(views: InboundView[], waitedFor: { msgId: string; to: string }): ToolResult;
  /** Said after a reply when peer prompts arrived in the same moment. */
  meanwhile(views: InboundView[]): string;
  /** Longest a single wait may block (MCP clients give up on silent calls); none: no bound. */
  readonly maxWaitMs?: number;
}

export interface ToolSpec {
  suffix: ToolSuffix;
  label: string;
  description: (n: ToolNaming) => string;
  schema: z.ZodType;
  run(host: ToolHost, params: never, signal: AbortSignal | undefined): Promise<ToolResult>;
}

const ListParams = z.object({
  include_explicit: ListInput.unwrap().shape.include_explicit.describe(
    "Also list agents started with --explicit (hidden from listings, reachable by exact name).",
  ),
});

const SendParams = z.object({
  to: SendInput.shape.to.describe("Name of the peer agent to message (see the list tool)."),
  prompt: SendInput.shape.prompt.describe("The message for the peer; it reaches that agent as a prompt."),
  conversation_id: SendInput.shape.conversation_id.describe("Optional id grouping related messages."),
  response_schema: SendInput.shape.response_schema.describe(
    "Optional JSON Schema; the peer's reply must be JSON valid against it, else the reply is a SCHEMA_MISMATCH error.",
  ),
});

const GetParams = z.object({ msg_id: MsgRef.shape.msg_id.describe("The msg_id returned by the send tool.") });

const ReplyParams = z.object({
  msg_id: MsgRef.shape.msg_id.describe(
    "The msg_id of the peer prompt you answer (from its <peer-prompt> tag).",
  ),
  text: SendInput.shape.prompt.describe(
    "Your answer for that sender only. When its prompt carries a response_schema: only JSON valid against it.",
  ),
});

const AwaitParams = GetParams.extend({
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(MAX_WAIT_MS)
    .optional()
    .describe("Stop waiting after this many milliseconds (default: the configured reply timeout)."),
});

/** A tool's parameters as plain JSON Schema (what pi and MCP clients are given). */
export function toParameters(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

/** Check a tool call's arguments; the message carries the BAD_INPUT code like every other refusal. */
export function parseParams<T extends z.ZodType>(schema: T, params: unknown): z.output<T> {
  const parsed = schema.safeParse(params ?? {});
  if (!parsed.success)
    throw new Error(
      `BAD_INPUT: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  return parsed.data;
}

export function describeOutcome(outcome: Outcome, host: ToolHost): ToolResult {
  const to = host.sentTo(outcome.msg_id);
  const details = { ...outcome, system: host.system };
  switch (outcome.state) {
    case "reply":
      return { text: `Reply from ${outcome.from} to ${outcome.msg_id}:\n${outcome.text}`, details };
    case "pending":
      return {
        text: `No reply yet to ${outcome.msg_id}${to ? ` from ${to}` : ""} (${pendingState(outcome, to)}).`,
        details,
      };
    case "error":
      return {
        isError: true,
        text: `Message ${outcome.msg_id}${to ? ` to ${to}` : ""} ended with an error: ${outcome.code}: ${outcome.message}`,
        details,
      };
  }
}

function pendingState(outcome: Extract<Outcome, { state: "pending" }>, to: string | undefined): string {
  if (outcome.delivered) return "delivered, being worked on";
  if (outcome.recipient === "offline") {
    const who = to ?? "the recipient";
    return `queued, not yet delivered: ${who} is offline; the message waits on the hub until ${who} comes back, and ends PEER_GONE if it does not`;
  }
  return "queued, not yet delivered";
}

export const errorText = (error: unknown): string => {
  const e = error as { code?: unknown; message?: string };
  return typeof e?.code === "string" ? `${e.code}: ${e.message}` : String(e?.message ?? error);
};

const list: ToolSpec = {
  suffix: "list",
  label: "list peers",
  description: (n) =>
    `List the peer agents reachable over ${n.label}: name, purpose, model, context use, queue depth, status.`,
  schema: ListParams,
  async run(host, params: z.output<typeof ListParams>) {
    const self = host.client.self;
    const peers = (await host.client.list({ include_explicit: params.include_explicit ?? false })).filter(
      (p) => p.id !== self.id,
    );
    if (peers.length === 0)
      return { text: `No peers on ${host.naming.label} in project ${host.project}.`, details: { peers } };
    const lines = peers.map((p) => {
      const bits = [p.purpose || "no purpose given", p.model || "model unknown"];
      if (p.context_used_pct !== null) bits.push(`context ${Math.round(p.context_used_pct)}%`);
      bits.push(`queue ${p.queue_depth}`, p.status, ...(p.explicit ? ["explicit"] : []));
      return `- ${p.name}: ${bits.join(" · ")}`;
    });
    return {
      text: `${peers.length} peer(s) on ${host.naming.label} (you are ${self.name}):\n${lines.join("\n")}`,
      details: { peers },
    };
  },
};

const send: ToolSpec = {
  suffix: "send",
  label: "send to peer",
  description: (n) =>
    `Send a prompt to a peer agent over ${n.label}. Returns a msg_id at once; the peer's final answer comes back as the reply: wait for it with ${n.prefix}_await or poll with ${n.prefix}_get.`,
  schema: SendParams,
  async run(host, params: z.output<typeof SendParams>) {
    if (params.response_schema) {
      const compiled = compileResponseSchema(params.response_schema);
      if (!compiled.ok) throw new Error(`BAD_INPUT: ${compiled.message}`);
    }
    // A send made while answering a peer continues that peer's chain: hops carry on from it.
    const { hops, chain_id } = host.chain();
    let ack: Awaited<ReturnType<ComsClient["send"]>>;
    try {
      ack = await host.client.send({
        to: params.to,
        prompt: params.prompt,
        conversation_id: params.conversation_id,
        response_schema: params.response_schema,
        hops,
        ...(chain_id ? { chain_id } : {}),
      });
    } catch (error) {
      throw new Error(`sending to ${params.to} failed: ${errorText(error)}`);
    }
    host.rememberSent(ack.msg_id, ack.to);
    const p = host.naming.prefix;
    return {
      text: `Sent to ${ack.to} (msg_id ${ack.msg_id}${ack.queue_depth > 1 ? `, ${ack.queue_depth - 1} message(s) ahead of it` : ""}). Wait for the reply with ${p}_await or check with ${p}_get.`,
      details: { ...ack, system: host.system },
    };
  },
};

const get: ToolSpec = {
  suffix: "get",
  label: "check reply",
  description: (n) =>
    `Check, without waiting, whether a message sent over ${n.label} has a reply: pending, the reply, or an error.`,
  schema: GetParams,
  async run(host, params: z.output<typeof GetParams>) {
    try {
      return describeOutcome(await host.client.get(params.msg_id), host);
    } catch (error) {
      throw new Error(`checking ${params.msg_id} failed: ${errorText(error)}`);
    }
  },
};

const wait: ToolSpec = {
  suffix: "await",
  label: "wait for reply",
  description: (n) =>
    n.frontEnd === "pi"
      ? `Wait for the reply to a message sent over ${n.label}. Ends with the reply, an error, the timeout, when the user presses ESC, or early when a peer sends you a prompt (answer it, then wait again).`
      : `Wait for the reply to a message sent over ${n.label}. Ends with the reply, an error, or early when a peer sends you a prompt (answer it with ${n.prefix}_reply, then wait again). A long wait returns "still pending" after a while: then call ${n.prefix}_await again.`,
  schema: AwaitParams,
  async run(host, params: z.output<typeof AwaitParams>, signal) {
    host.awaitStarted?.(params.msg_id);
    const to = host.sentTo(params.msg_id) ?? "the peer";
    const p = host.naming.prefix;
    const inner = new AbortController();
    let cut: InboundView[] | null = null;
    const stopWatching = host.watchForPrompts((views) => {
      cut = views;
      inner.abort();
    });
    const onAbort = () => inner.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) inner.abort();
    const timeoutMs =
      host.maxWaitMs === undefined
        ? params.timeout_ms
        : Math.min(params.timeout_ms ?? Infinity, host.maxWaitMs);
    try {
      const outcome = await host.client.await(params.msg_id, { timeoutMs, signal: inner.signal });
      if (outcome.state === "error" && outcome.code === "TIMEOUT") {
        return {
          text: `No reply to ${params.msg_id} from ${to} in time (${outcome.message}). It is still pending: call ${p}_await again to keep waiting or ${p}_get to check.`,
          details: { ...outcome, system: host.system },
        };
      }
      const described = describeOutcome(outcome, host);
      // The reply and a peer prompt arrived together: say so, the prompt is not lost.
      if (cut) described.text += `\n\n${host.meanwhile(cut)}`;
      return described;
    } catch (error) {
      if (cut) return host.cutShort(cut, { msgId: params.msg_id, to });
      if (signal?.aborted || (error as { code?: string })?.code === "CANCELLED") {
        return {
          text: `Wait for ${params.msg_id} cancelled. The message is still pending; check later with ${p}_get.`,
          details: { state: "cancelled", msg_id: params.msg_id, system: host.system },
        };
      }
      throw new Error(`waiting for ${params.msg_id} failed: ${errorText(error)}`);
    } finally {
      stopWatching();
      signal?.removeEventListener("abort", onAbort);
    }
  },
};

const reply: ToolSpec = {
  suffix: "reply",
  label: "reply to a peer prompt",
  description: (n) =>
    n.frontEnd === "pi"
      ? `Answer one peer prompt that reached you over ${n.label}, by its msg_id. Required when several prompts arrive together: call it once per msg_id, and each sender receives only the text you give for its own msg_id. For a single prompt your final message is sent automatically, so it is optional there.`
      : `Answer one peer prompt that reached you over ${n.label}, by its msg_id: the sender receives exactly this text (once; a second reply to the same msg_id is refused). Every prompt you receive needs one; when the sender gave a response_schema the text must be JSON valid against it, else nothing is sent and you can call again.`,
  schema: ReplyParams,
  async run(host, params: z.output<typeof ReplyParams>) {
    const done = await host.reply(params.msg_id, params.text);
    if (!done.ok)
      return {
        isError: true,
        text: `Reply to ${done.to} (msg_id ${params.msg_id}) was not delivered: ${done.text}`,
        details: done.details,
      };
    return { text: `Reply sent to ${done.to} (msg_id ${params.msg_id}).`, details: done.details };
  },
};

/** The tools every front end offers, in this order. */
export const TOOL_TABLE: readonly ToolSpec[] = [list, send, get, wait, reply];

/**
 * The model's tools: one definition table, instantiated once per system
 * (`coms_*` over P2P, `coms_net_*` over the hub). Parameter schemas are the
 * contract's zod schemas turned into JSON Schema; results are short text for
 * the model plus structured details.
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";
import { z } from "zod";
import { compileResponseSchema } from "../contract/response-schema.ts";
import { ListInput, MsgRef, type Outcome, SendInput } from "../contract/schemas.ts";
import type { InboundDelivery } from "./inbound.ts";
import { interruptedText, systemLabel, toolPrefix } from "./messages.ts";
import { type ComsState, type SystemKind, type SystemSlot, slotOf } from "./state.ts";
import type { ToolSuffix } from "./tool-names.ts";

type ToolDefinition = Parameters<ExtensionAPI["registerTool"]>[0];

const MAX_WAIT_MS = 24 * 60 * 60 * 1000;

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

/** JSON Schema for pi's `parameters`; pi validates plain JSON Schema as well as TypeBox. */
export function toParameters(schema: z.ZodType): ToolDefinition["parameters"] {
  const json = z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>;
  delete json.$schema;
  return json as unknown as ToolDefinition["parameters"];
}

export interface ToolEnv {
  state: ComsState;
  delivery: () => InboundDelivery;
}

interface Result {
  text: string;
  details: Record<string, unknown>;
  /** The model sees an error result (the message ended badly, or nothing was sent). */
  isError?: boolean;
}

interface ToolSpec {
  suffix: ToolSuffix;
  label: string;
  description: (system: SystemKind) => string;
  schema: z.ZodType;
  run(env: ToolEnv, slot: SystemSlot, params: never, signal: AbortSignal | undefined): Promise<Result>;
}

function need(env: ToolEnv, system: SystemKind): SystemSlot {
  const slot = slotOf(env.state, system);
  if (!slot)
    throw new Error(`${system === "p2p" ? "/coms" : "/coms-net"} is not active; ask the user to start it`);
  return slot;
}

function describeOutcome(outcome: Outcome, slot: SystemSlot, env: ToolEnv): Result {
  const to = env.state.sent.get(outcome.msg_id)?.to;
  switch (outcome.state) {
    case "reply":
      return {
        text: `Reply from ${outcome.from} to ${outcome.msg_id}:\n${outcome.text}`,
        details: { ...outcome, system: slot.kind },
      };
    case "pending":
      return {
        text: `No reply yet to ${outcome.msg_id}${to ? ` from ${to}` : ""} (${pendingState(outcome, to)}).`,
        details: { ...outcome, system: slot.kind },
      };
    case "error":
      return {
        isError: true,
        text: `Message ${outcome.msg_id}${to ? ` to ${to}` : ""} ended with an error: ${outcome.code}: ${outcome.message}`,
        details: { ...outcome, system: slot.kind },
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

const errorText = (error: unknown): string => {
  const e = error as { code?: unknown; message?: string };
  return typeof e?.code === "string" ? `${e.code}: ${e.message}` : String(e?.message ?? error);
};

const SPECS: ToolSpec[] = [
  {
    suffix: "list",
    label: "list peers",
    description: (s) =>
      `List the peer agents reachable over ${systemLabel(s)}: name, purpose, model, context use, queue depth, status.`,
    schema: ListParams,
    async run(_env, slot, params: z.output<typeof ListParams>) {
      const peers = (await slot.client.list({ include_explicit: params.include_explicit ?? false })).filter(
        (p) => p.id !== slot.client.self.id,
      );
      if (peers.length === 0)
        return {
          text: `No peers on ${systemLabel(slot.kind)} in project ${slot.project}.`,
          details: { peers },
        };
      const lines = peers.map((p) => {
        const bits = [p.purpose || "no purpose given", p.model || "model unknown"];
        if (p.context_used_pct !== null) bits.push(`context ${Math.round(p.context_used_pct)}%`);
        bits.push(`queue ${p.queue_depth}`, p.status, ...(p.explicit ? ["explicit"] : []));
        return `- ${p.name}: ${bits.join(" · ")}`;
      });
      return {
        text: `${peers.length} peer(s) on ${systemLabel(slot.kind)} (you are ${slot.client.self.name}):\n${lines.join("\n")}`,
        details: { peers },
      };
    },
  },
  {
    suffix: "send",
    label: "send to peer",
    description: (s) =>
      `Send a prompt to a peer agent over ${systemLabel(s)}. Returns a msg_id at once; the peer's final answer comes back as the reply: wait for it with ${toolPrefix(s)}_await or poll with ${toolPrefix(s)}_get.`,
    schema: SendParams,
    async run(env, slot, params: z.output<typeof SendParams>) {
      if (params.response_schema) {
        const compiled = compileResponseSchema(params.response_schema);
        if (!compiled.ok) throw new Error(`BAD_INPUT: ${compiled.message}`);
      }
      // A send made while answering a peer continues that peer's chain: hops carry on from it.
      const handling = env.state.inFlight.flatMap((b) => b.items);
      const hops = handling.reduce((max, item) => Math.max(max, item.message.hops), 0);
      const chain = handling[0]?.message.chain_id ?? handling[0]?.message.msg_id;
      let ack: Awaited<ReturnType<SystemSlot["client"]["send"]>>;
      try {
        ack = await slot.client.send({
          to: params.to,
          prompt: params.prompt,
          conversation_id: params.conversation_id,
          response_schema: params.response_schema,
          hops,
          ...(chain ? { chain_id: chain } : {}),
        });
      } catch (error) {
        throw new Error(`sending to ${params.to} failed: ${errorText(error)}`);
      }
      env.state.sent.set(ack.msg_id, { to: ack.to, system: slot.kind });
      if (env.state.sent.size > 500) env.state.sent.delete(env.state.sent.keys().next().value as string);
      const p = toolPrefix(slot.kind);
      return {
        text: `Sent to ${ack.to} (msg_id ${ack.msg_id}${ack.queue_depth > 1 ? `, ${ack.queue_depth - 1} message(s) ahead of it` : ""}). Wait for the reply with ${p}_await or check with ${p}_get.`,
        details: { ...ack, system: slot.kind },
      };
    },
  },
  {
    suffix: "get",
    label: "check reply",
    description: (s) =>
      `Check, without waiting, whether a message sent over ${systemLabel(s)} has a reply: pending, the reply, or an error.`,
    schema: GetParams,
    async run(env, slot, params: z.output<typeof GetParams>) {
      try {
        return describeOutcome(await slot.client.get(params.msg_id), slot, env);
      } catch (error) {
        throw new Error(`checking ${params.msg_id} failed: ${errorText(error)}`);
      }
    },
  },
  {
    suffix: "await",
    label: "wait for reply",
    description: (s) =>
      `Wait for the reply to a message sent over ${systemLabel(s)}. Ends with the reply, an error, the timeout, when the user presses ESC, or early when a peer sends you a prompt (answer it, then wait again).`,
    schema: AwaitParams,
    async run(env, slot, params: z.output<typeof AwaitParams>, signal) {
      const { state } = env;
      state.interrupted = state.interrupted.filter((w) => w.msgId !== params.msg_id);
      const to = state.sent.get(params.msg_id)?.to ?? "the peer";
      const inner = new AbortController();
      let cutShort: Parameters<typeof interruptedText>[0] | null = null;
      const stopWatching = env.delivery().watchForPrompts((views) => {
        cutShort = views;
        inner.abort();
      });
      const onAbort = () => inner.abort();
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) inner.abort();
      try {
        const outcome = await slot.client.await(params.msg_id, {
          timeoutMs: params.timeout_ms,
          signal: inner.signal,
        });
        if (outcome.state === "error" && outcome.code === "TIMEOUT") {
          return {
            text: `No reply to ${params.msg_id} from ${to} in time (${outcome.message}). It is still pending: call ${toolPrefix(slot.kind)}_await again to keep waiting or ${toolPrefix(slot.kind)}_get to check.`,
            details: { ...outcome, system: slot.kind },
          };
        }
        const described = describeOutcome(outcome, slot, env);
        if (cutShort) {
          // The reply and a peer prompt arrived together: the prompt is already in the next message.
          const from = [
            ...new Set((cutShort as Parameters<typeof interruptedText>[0]).map((v) => `"${v.from}"`)),
          ];
          described.text +=
            (cutShort as unknown[]).length === 1
              ? `\n\nMeanwhile a prompt from ${from.join(", ")} arrived and is shown next; the text of your next message is sent back to it as the reply.`
              : `\n\nMeanwhile prompts from ${from.join(", ")} arrived and are shown next; answer each with the reply tool, once per msg_id.`;
        }
        return described;
      } catch (error) {
        if (cutShort) {
          const views = cutShort as Parameters<typeof interruptedText>[0];
          state.interrupted.push({ system: slot.kind, msgId: params.msg_id, to });
          return {
            text: interruptedText(views, { msgId: params.msg_id, to, system: slot.kind }),
            details: {
              state: "interrupted",
              msg_id: params.msg_id,
              by: views.map((v) => v.from),
              system: slot.kind,
            },
          };
        }
        if (signal?.aborted || (error as { code?: string })?.code === "CANCELLED") {
          return {
            text: `Wait for ${params.msg_id} cancelled. The message is still pending; check later with ${toolPrefix(slot.kind)}_get.`,
            details: { state: "cancelled", msg_id: params.msg_id, system: slot.kind },
          };
        }
        throw new Error(`waiting for ${params.msg_id} failed: ${errorText(error)}`);
      } finally {
        stopWatching();
        signal?.removeEventListener("abort", onAbort);
      }
    },
  },
  {
    suffix: "reply",
    label: "reply to a peer prompt",
    description: (s) =>
      `Answer one peer prompt that reached you over ${systemLabel(s)}, by its msg_id. Required when several prompts arrive together: call it once per msg_id, and each sender receives only the text you give for its own msg_id. For a single prompt your final message is sent automatically, so it is optional there.`,
    schema: ReplyParams,
    async run(env, slot, params: z.output<typeof ReplyParams>) {
      const entry = await env.delivery().replyTo(slot.kind, params.msg_id, params.text);
      if (!entry.ok)
        return {
          isError: true,
          text: `Reply to ${entry.to} (msg_id ${params.msg_id}) was not delivered: ${entry.text}`,
          details: { ...entry },
        };
      return { text: `Reply sent to ${entry.to} (msg_id ${params.msg_id}).`, details: { ...entry } };
    },
  },
];

const GUIDELINES: Record<SystemKind, string[]> = {
  p2p: [
    "To ask another pi agent something, use coms_send and then coms_await with the returned msg_id.",
    "When one peer prompt arrives it is fenced in <peer-prompt>; your final message of that turn is sent back as the reply automatically. When several arrive together, answer each with coms_reply (once per msg_id) so every sender gets only its own answer.",
  ],
  hub: [
    "To ask an agent on the coms-net hub something, use coms_net_send and then coms_net_await with the returned msg_id.",
    "When several peer prompts arrive together over the hub, answer each with coms_net_reply (once per msg_id).",
  ],
};

/** Build the tool definitions of one system (parameter schemas derived from the contract here). */
export function toolsFor(system: SystemKind, env: ToolEnv): ToolDefinition[] {
  return SPECS.map((spec) => {
    const name = `${toolPrefix(system)}_${spec.suffix}`;
    const definition: ToolDefinition = {
      name,
      label: `${system === "p2p" ? "coms" : "coms-net"}: ${spec.label}`,
      description: spec.description(system),
      promptSnippet: spec.description(system).split(". ")[0],
      promptGuidelines: spec.suffix === "send" ? GUIDELINES[system] : undefined,
      parameters: toParameters(spec.schema),
      async execute(_toolCallId, params, signal) {
        const slot = need(env, system);
        const parsed = spec.schema.safeParse(params);
        if (!parsed.success)
          throw new Error(
            `BAD_INPUT: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
          );
        const result = await spec.run(env, slot, parsed.data as never, signal);
        return {
          content: [{ type: "text", text: result.text }],
          details: result.details,
          ...(result.isError ? { isError: true } : {}),
        };
      },
    };
    return definition;
  });
}

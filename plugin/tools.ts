/**
 * The one tool table (tools/table.ts) as pi tools, instantiated once per
 * system (`coms_*` over P2P, `coms_net_*` over the hub). What is pi's own:
 * a single prompt's reply is the agent's final message, a prompt that cuts
 * a wait short is shown in the next message, hops continue from the prompts
 * in front of the agent.
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";
import { type SystemKind, systemLabel, toolPrefix } from "../tools/names.ts";
import { parseParams, TOOL_TABLE, type ToolHost, type ToolNaming, toParameters } from "../tools/table.ts";
import type { InboundDelivery } from "./inbound.ts";
import { interruptedText } from "./messages.ts";
import { type ComsState, type SystemSlot, slotOf } from "./state.ts";

type ToolDefinition = Parameters<ExtensionAPI["registerTool"]>[0];

export interface ToolEnv {
  state: ComsState;
  delivery: () => InboundDelivery;
}

function need(env: ToolEnv, system: SystemKind): SystemSlot {
  const slot = slotOf(env.state, system);
  if (!slot)
    throw new Error(`${system === "p2p" ? "/coms" : "/coms-net"} is not active; ask the user to start it`);
  return slot;
}

function hostFor(env: ToolEnv, slot: SystemSlot, naming: ToolNaming): ToolHost {
  const { state } = env;
  const kind = slot.kind;
  return {
    client: slot.client,
    system: kind,
    project: slot.project,
    naming,
    sentTo: (msgId) => state.sent.get(msgId)?.to,
    rememberSent(msgId, to) {
      state.sent.set(msgId, { to, system: kind });
      if (state.sent.size > 500) state.sent.delete(state.sent.keys().next().value as string);
    },
    chain() {
      const handling = state.inFlight.flatMap((b) => b.items);
      const hops = handling.reduce((max, item) => Math.max(max, item.message.hops), 0);
      const chain = handling[0]?.message.chain_id ?? handling[0]?.message.msg_id;
      return chain ? { hops, chain_id: chain } : { hops };
    },
    async reply(msgId, text) {
      const entry = await env.delivery().replyTo(kind, msgId, text);
      return { ok: entry.ok, to: entry.to, text: entry.text, details: { ...entry } };
    },
    watchForPrompts: (cut) => env.delivery().watchForPrompts(cut),
    awaitStarted(msgId) {
      state.interrupted = state.interrupted.filter((w) => w.msgId !== msgId);
    },
    cutShort(views, waitedFor) {
      state.interrupted.push({ system: kind, msgId: waitedFor.msgId, to: waitedFor.to });
      return {
        text: interruptedText(views, { ...waitedFor, system: kind }),
        details: {
          state: "interrupted",
          msg_id: waitedFor.msgId,
          by: views.map((v) => v.from),
          system: kind,
        },
      };
    },
    meanwhile(views) {
      // The prompt is already in the next message.
      const from = [...new Set(views.map((v) => `"${v.from}"`))];
      return views.length === 1
        ? `Meanwhile a prompt from ${from.join(", ")} arrived and is shown next; the text of your next message is sent back to it as the reply.`
        : `Meanwhile prompts from ${from.join(", ")} arrived and are shown next; answer each with the reply tool, once per msg_id.`;
    },
  };
}

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

/** Build the tool definitions of one system. */
export function toolsFor(system: SystemKind, env: ToolEnv): ToolDefinition[] {
  const naming: ToolNaming = { prefix: toolPrefix(system), label: systemLabel(system), frontEnd: "pi" };
  return TOOL_TABLE.map((spec) => {
    const description = spec.description(naming);
    const definition: ToolDefinition = {
      name: `${naming.prefix}_${spec.suffix}`,
      label: `${system === "p2p" ? "coms" : "coms-net"}: ${spec.label}`,
      description,
      promptSnippet: description.split(". ")[0],
      promptGuidelines: spec.suffix === "send" ? GUIDELINES[system] : undefined,
      // pi validates plain JSON Schema as well as TypeBox.
      parameters: toParameters(spec.schema) as unknown as ToolDefinition["parameters"],
      async execute(_toolCallId, params, signal) {
        const slot = need(env, system);
        const parsed = parseParams(spec.schema, params);
        const result = await spec.run(hostFor(env, slot, naming), parsed as never, signal);
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

/**
 * What the agent reads: the text of an injected peer prompt (fenced as the
 * peer's content, never as the user's words, and saying how the reply is
 * taken) and of the reminder to resume an interrupted wait.
 */
import type { AgentCard } from "../contract/schemas.ts";
import { type SystemKind, systemLabel, toolPrefix } from "../tools/names.ts";
import { NOT_YOUR_USER, type InboundView as PeerView, peerPromptBlock } from "../tools/peer-text.ts";
import type { InboundItem, InterruptedAwait } from "./state.ts";

export const INBOUND_TYPE = "coms-inbound";
export const RESUME_TYPE = "coms-resume";
export const REPLY_ENTRY_TYPE = "coms-reply";
/** Told to the responder: a reply it gave was not sent as written. */
export const NOTICE_TYPE = "coms-notice";

/** A peer prompt as pi shows it; `again` when it was shown before among several and left without a reply call. */
export interface InboundView extends PeerView {
  again?: boolean;
}

export interface InboundDetails {
  batchId: string;
  items: InboundView[];
}

export interface ReplyEntry {
  system: SystemKind;
  msg_id: string;
  to: string;
  color?: string;
  ok: boolean;
  text: string;
}

export function viewOf(item: InboundItem, peers: AgentCard[]): InboundView {
  const card =
    peers.find((p) => p.id === item.message.from_id) ?? peers.find((p) => p.name === item.message.from);
  return {
    system: item.system,
    msg_id: item.message.msg_id,
    from: item.message.from,
    purpose: card?.purpose ?? "",
    color: card?.color,
    prompt: item.message.prompt,
    response_schema: item.message.response_schema,
    conversation_id: item.message.conversation_id,
    hops: item.message.hops,
    ...(item.alone ? { again: true } : {}),
  };
}

/**
 * `via` says how the prompt arrived: "turn" (the agent was idle; its final
 * message of the turn is the reply) or "steer" (it cut a wait short; the text
 * of the agent's next message is the reply, so it can keep waiting afterwards).
 * Several prompts at once are answered one by one with the reply tool instead,
 * so each sender gets only the answer meant for it.
 */
export function inboundText(items: InboundView[], via: "turn" | "steer" = "turn"): string {
  const senders = [...new Set(items.map((i) => i.from))];
  const lines: string[] = [];
  if (items.length === 1) {
    const it = items[0] as InboundView;
    lines.push(
      `[pi-coms] A prompt from the peer agent "${it.from}"${it.purpose ? ` (purpose: ${it.purpose})` : ""} arrived over ${systemLabel(it.system)}.`,
    );
    if (it.again)
      lines.push(
        `Asked again: you saw this prompt before among several, but did not answer it with ${toolPrefix(it.system)}_reply, so no answer was delivered to "${it.from}" (your final text then went to no one). Answer it again in full now; do not refer to an earlier answer, the sender never saw it.`,
      );
  } else {
    lines.push(
      `[pi-coms] ${items.length} prompts from peer agents (${senders.join(", ")}) arrived together.`,
    );
  }
  lines.push(NOT_YOUR_USER);
  if (items.length === 1) {
    const to = `"${items[0]?.from}"`;
    lines.push(
      via === "turn"
        ? `How to reply: your final message of this turn is sent back to ${to} automatically as the reply. Answer in that final message; do not use ${toolPrefix(items[0]?.system ?? "p2p")}_send to reply.`
        : `How to reply: the text of your next message is sent back to ${to} automatically as the reply. In that same message you may call tools, for example to keep waiting for your own reply. Do not use ${toolPrefix(items[0]?.system ?? "p2p")}_send to reply.`,
    );
  } else {
    const tools = [...new Set(items.map((i) => `${toolPrefix(i.system)}_reply`))].join(" / ");
    lines.push(
      `How to reply: each sender must receive only the answer to its own prompt. Call ${tools} once per msg_id below (coms_reply for via="p2p", coms_net_reply for via="hub") with the answer meant for that sender alone; never put one sender's prompt or answer into another's reply. Your final message${via === "steer" ? " text" : ""} is not sent to anyone. A prompt you leave without a reply is shown to you again on its own.`,
    );
  }
  for (const it of items) {
    lines.push("", ...peerPromptBlock(it));
  }
  return lines.join("\n");
}

export function resumeText(waits: InterruptedAwait[]): string {
  const list = waits
    .map((w) => `- msg_id ${w.msgId} to "${w.to}": call ${toolPrefix(w.system)}_await again`)
    .join("\n");
  return [
    "[pi-coms] The peer prompt that interrupted your wait has been answered and your reply was sent.",
    "You were still waiting for these replies; continue your earlier task:",
    list,
  ].join("\n");
}

/** The tool result of an await that a peer prompt cut short. */
export function interruptedText(
  items: InboundView[],
  waitedFor: { msgId: string; to: string; system: SystemKind },
): string {
  const from = [...new Set(items.map((i) => `"${i.from}"`))].join(", ");
  return [
    `Stopped waiting: a prompt from ${from} arrived and is shown in the next message.`,
    items.length === 1
      ? "Answer it in your next message: that message's text is sent back automatically as the reply."
      : "Answer each prompt with the reply tool, once per msg_id, as the next message explains.",
    `Your message ${waitedFor.msgId} to "${waitedFor.to}" is still pending: in the same message, call ${toolPrefix(waitedFor.system)}_await with msg_id ${waitedFor.msgId} to keep waiting.`,
  ].join(" ");
}

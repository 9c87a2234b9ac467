/**
 * The MCP front end's own tool: an MCP client cannot be interrupted by an
 * incoming prompt, so it asks for the next one. Blocks at most the bridge's
 * wait bound (clients give up on a silent call), then says to call again.
 */
import { z } from "zod";
import type { HeldPrompts } from "./held-prompts.ts";
import { arrivedLine, MCP_PREFIX, promptsText } from "./prompt-text.ts";

export const RECEIVE_NAME = `${MCP_PREFIX}_receive`;

export const ReceiveParams = z.object({
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(24 * 60 * 60 * 1000)
    .optional()
    .describe("Stop waiting after this many milliseconds (never longer than the bridge's wait bound)."),
});

export const RECEIVE_DESCRIPTION = `Wait for the next prompt a peer agent sends you, and return it: its msg_id, sender, text and any response_schema. Answer it with ${MCP_PREFIX}_reply. Returns "no prompt yet" when the wait ends first: call it again to keep listening.`;

export async function receive(
  held: HeldPrompts,
  params: z.output<typeof ReceiveParams>,
  maxWaitMs: number,
  signal: AbortSignal,
): Promise<{ text: string; msgId?: string }> {
  const waitMs = Math.min(params.timeout_ms ?? maxWaitMs, maxWaitMs);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), waitMs);
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const message = await held.take(stop.signal);
    if (!message)
      return {
        text: `No peer prompt yet (waited ${Math.round(waitMs / 1000)} s). Call ${RECEIVE_NAME} again to keep listening.`,
      };
    const views = [held.view(message)];
    const more = held.waitingCount;
    const tail =
      more > 0 ? `\n\n${more} more prompt(s) are waiting: call ${RECEIVE_NAME} again after this one.` : "";
    return { text: `${promptsText(views, arrivedLine(views))}${tail}`, msgId: message.msg_id };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

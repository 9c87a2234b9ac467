/**
 * How pi-coms entries look in the transcript: an inbound peer prompt and an
 * outbound reply are boxed differently, the peer's name in its colour.
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";
import { Box, Text } from "@earendil-works/pi-tui";
import {
  INBOUND_TYPE,
  type InboundDetails,
  NOTICE_TYPE,
  REPLY_ENTRY_TYPE,
  RESUME_TYPE,
  type ReplyEntry,
} from "./messages.ts";
import { paint } from "./widget.ts";

const PREVIEW_LINES = 12;

function clip(text: string, expanded: boolean): string {
  if (expanded) return text;
  const lines = text.split("\n");
  return lines.length > PREVIEW_LINES ? `${lines.slice(0, PREVIEW_LINES).join("\n")}\n…` : text;
}

export function registerRenderers(pi: ExtensionAPI): void {
  pi.registerMessageRenderer<InboundDetails>(INBOUND_TYPE, (message, { expanded, outputPad }, theme) => {
    const items = message.details?.items ?? [];
    const box = new Box(outputPad, 1, (t) => theme.bg("customMessageBg", t));
    const parts = items.map((it) => {
      const head = `${theme.fg("accent", "⇠ peer prompt")} from ${theme.bold(paint(it.from, it.color, true))}${
        it.purpose ? theme.fg("dim", ` (${it.purpose})`) : ""
      } ${theme.fg("dim", `via ${it.system === "p2p" ? "coms" : "coms-net"} · ${it.msg_id}`)}`;
      const schema = it.response_schema
        ? `\n${theme.fg("dim", "expects JSON matching a response_schema")}`
        : "";
      const again = it.again
        ? `\n${theme.fg("warning", "asked again: the earlier answer was not sent (no reply tool call)")}`
        : "";
      return `${head}${again}\n${clip(it.prompt, expanded)}${schema}`;
    });
    box.addChild(new Text(parts.join("\n\n") || String(message.content), 0, 0));
    return box;
  });

  pi.registerMessageRenderer(RESUME_TYPE, (_message, { outputPad }, theme) => {
    const box = new Box(outputPad, 0, (t) => theme.bg("customMessageBg", t));
    box.addChild(
      new Text(theme.fg("dim", "coms: peer prompt answered; resuming the interrupted wait"), 0, 0),
    );
    return box;
  });

  pi.registerMessageRenderer(NOTICE_TYPE, (message, { outputPad }, theme) => {
    const box = new Box(outputPad, 0, (t) => theme.bg("customMessageBg", t));
    box.addChild(new Text(theme.fg("warning", String(message.content)), 0, 0));
    return box;
  });

  pi.registerEntryRenderer<ReplyEntry>(REPLY_ENTRY_TYPE, (entry, { expanded }, theme) => {
    const data = entry.data;
    if (!data) return undefined;
    const arrow = data.ok ? theme.fg("success", "⇢ reply sent") : theme.fg("error", "⇢ error reply sent");
    const head = `${arrow} to ${theme.bold(paint(data.to, data.color, true))} ${theme.fg("dim", `· ${data.msg_id}`)}`;
    const box = new Box(1, 0);
    box.addChild(
      new Text(`${head}\n${theme.fg(data.ok ? "muted" : "error", clip(data.text, expanded))}`, 0, 0),
    );
    return box;
  });
}

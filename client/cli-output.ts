/** How the CLI shows things to a person; `--json` bypasses all of this. */
import type { AgentCard, Message, Outcome, SendAck } from "../contract/schemas.ts";

export function agentTable(agents: readonly AgentCard[]): string {
  if (agents.length === 0) return "(no agents)\n";
  const rows = [
    ["NAME", "STATUS", "MODEL", "CTX", "QUEUE", "PURPOSE"],
    ...agents.map((a) => [
      a.name,
      a.status,
      a.model || "-",
      a.context_used_pct === null ? "-" : `${Math.round(a.context_used_pct)}%`,
      String(a.queue_depth),
      `${a.explicit ? "[explicit] " : ""}${oneLine(a.purpose)}`,
    ]),
  ];
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

export function ackLine(ack: SendAck): string {
  return `accepted by ${ack.to} (queue depth ${ack.queue_depth}): ${ack.msg_id}`;
}

/** The reply text for stdout; pending and errors are status lines for stderr. */
export function outcomeText(outcome: Outcome): { stdout: string; stderr: string } {
  switch (outcome.state) {
    case "reply":
      return { stdout: withNewline(outcome.text), stderr: "" };
    case "pending":
      return {
        stdout: `pending (${outcome.delivered ? "delivered, no reply yet" : "not delivered yet"})\n`,
        stderr: "",
      };
    case "error":
      return { stdout: "", stderr: `pi-coms: ${outcome.code}: ${outcome.message}\n` };
  }
}

export function inboundHeader(message: Message): string {
  const conversation = message.conversation_id ? `, conversation ${message.conversation_id}` : "";
  return `--- from ${message.from} (${message.msg_id}${conversation})\n`;
}

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 60 ? `${flat.slice(0, 59)}…` : flat;
}

/**
 * A progress line on stderr while waiting, only when stderr is a terminal:
 * pipes and CI logs stay clean.
 */
export function startSpinner(label: string, stream: NodeJS.WriteStream = process.stderr): () => void {
  if (!stream.isTTY) return () => {};
  const frames = ["|", "/", "-", "\\"];
  const started = Date.now();
  let frame = 0;
  const draw = () => {
    const seconds = Math.floor((Date.now() - started) / 1000);
    stream.write(`\r${frames[frame++ % frames.length]} ${label} (${seconds}s)\x1b[K`);
  };
  draw();
  const timer = setInterval(draw, 120);
  timer.unref();
  return () => {
    clearInterval(timer);
    stream.write("\r\x1b[K");
  };
}

/**
 * `pi-coms listen`: the shell as an agent. Each inbound prompt is printed and
 * answered, one at a time, by the next stdin line or by a command's stdout.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { ComsError } from "../contract/errors.ts";
import type { Message } from "../contract/schemas.ts";
import type { Command } from "./cli-args.ts";
import { connectForCli } from "./cli-connect.ts";
import { inboundHeader } from "./cli-output.ts";
import type { CliIO } from "./cli-run.ts";
import { EXIT, type ExitCode } from "./exit-codes.ts";
import { serve } from "./serve.ts";

type ListenCommand = Extract<Command, { kind: "listen" }>;

export async function runListen(command: ListenCommand, io: CliIO): Promise<ExitCode> {
  const json = command.common.json;
  const client = await connectForCli(command.common, {
    name: "shell",
    explicit: command.explicit,
    ...(command.color !== undefined && { color: command.color }),
  });
  let finish = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  io.signal.addEventListener("abort", () => finish(), { once: true });

  const lines = command.exec === undefined ? new StdinLines(() => finish()) : undefined;
  const { self } = client;
  if (json) {
    io.stdout(
      `${JSON.stringify({ event: "ready", name: self.name, id: self.id, project: self.project, transport: client.transport })}\n`,
    );
  } else {
    io.stderr(
      `listening as ${self.name} in ${self.project} over ${client.transport === "hub" ? "the hub" : "P2P"}; Ctrl-C to stop\n`,
    );
  }

  const serving = serve(
    client,
    async (message, { signal }) => {
      if (json) io.stdout(`${JSON.stringify({ event: "message", message })}\n`);
      else io.stdout(`${inboundHeader(message)}${message.prompt}\n`);
      if (command.exec !== undefined) return runExec(command.exec, message, signal);
      if (!json && process.stderr.isTTY) io.stderr("reply> ");
      const line = await lines?.next();
      if (line === undefined)
        throw new ComsError("PEER_GONE", "the listener's input closed before it answered");
      return line;
    },
    {
      onSettled: (message, result) => {
        if (json) io.stdout(`${JSON.stringify({ event: "settled", msg_id: message.msg_id, result })}\n`);
        else if (!result.ok)
          io.stderr(`pi-coms: answered ${message.msg_id} with ${result.code}: ${result.message}\n`);
        if (command.max !== undefined && serving.settled >= command.max) {
          // Stop before the next queued prompt starts: it stays with the transport, unanswered.
          void serving.stop();
          finish();
        }
        lines?.checkDrained();
      },
      onError: (error, message) => {
        io.stderr(
          `pi-coms: could not answer ${message.msg_id}: ${error instanceof Error ? error.message : String(error)}\n`,
        );
      },
    },
  );
  try {
    await finished;
    await serving.stop();
  } finally {
    await client.close();
  }
  return EXIT.OK;
}

/**
 * Lines from stdin, one per reply. Lines typed (or piped) ahead are kept for
 * the next prompts; once stdin has ended and they are used up, nothing can
 * answer any more and `onDrained` runs.
 */
class StdinLines {
  private readonly queue: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private ended = false;
  private readonly onDrained: () => void;

  constructor(onDrained: () => void) {
    this.onDrained = onDrained;
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on("line", (line) => {
      if (this.waiter) this.take()(line);
      else this.queue.push(line);
    });
    rl.on("close", () => {
      this.ended = true;
      if (this.waiter) this.take()(undefined);
      this.checkDrained();
    });
  }

  next(): Promise<string | undefined> {
    const line = this.queue.shift();
    if (line !== undefined || this.ended) return Promise.resolve(line);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  checkDrained(): void {
    if (this.ended && this.queue.length === 0) this.onDrained();
  }

  private take(): (line: string | undefined) => void {
    const waiter = this.waiter as (line: string | undefined) => void;
    this.waiter = undefined;
    return waiter;
  }
}

/** Runs CMD through the shell with the prompt on stdin; its stdout (minus one final newline) is the reply. */
function runExec(cmd: string, message: Message, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, {
      shell: true,
      stdio: ["pipe", "pipe", "inherit"],
      signal,
      env: {
        ...process.env,
        PI_COMS_FROM: message.from,
        PI_COMS_MSG_ID: message.msg_id,
        ...(message.conversation_id !== undefined && { PI_COMS_CONVERSATION_ID: message.conversation_id }),
      },
    });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A command that ignores its stdin closes the pipe early; that is not a failure.
    child.stdin.on("error", () => {});
    child.stdin.end(message.prompt);
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (code === 0)
        resolve(
          Buffer.concat(chunks)
            .toString("utf8")
            .replace(/\r?\n$/, ""),
        );
      else reject(new Error(`--exec command ${sig ? `was killed by ${sig}` : `exited with ${code}`}`));
    });
  });
}

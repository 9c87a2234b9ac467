/**
 * One `pi-coms` invocation: parse, run one command, and turn every failure
 * into a message on stderr and a documented exit code.
 */
import { ComsError, toComsError } from "../contract/errors.ts";
import type { Outcome } from "../contract/schemas.ts";
import { type Command, type CommonOptions, parseCommandLine, UsageError, usageLine } from "./cli-args.ts";
import { ackLine, agentTable, outcomeText, startSpinner } from "./cli-output.ts";
import { EXIT, type ExitCode, exitCodeForError, exitCodeForOutcome } from "./exit-codes.ts";
import type { OneShotClient } from "./hub-session.ts";

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  signal: AbortSignal;
}

export async function runCli(argv: readonly string[], io: CliIO): Promise<ExitCode> {
  let command: Command;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`pi-coms: ${error.message}\n${usageLine(error.command)}\n`);
    return EXIT.USAGE;
  }
  if (command.kind === "help") {
    io.stdout(command.text);
    return EXIT.OK;
  }
  try {
    return await runCommand(command, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`pi-coms: ${error.message}\n${usageLine(error.command)}\n`);
      return EXIT.USAGE;
    }
    const coms = io.signal.aborted ? new ComsError("CANCELLED", "interrupted") : toComsError(error);
    if (command.common.json)
      io.stdout(`${JSON.stringify({ error: { code: coms.code, message: coms.message } })}\n`);
    io.stderr(`pi-coms: ${coms.message} (${coms.code})\n`);
    return exitCodeForError(coms.code);
  }
}

async function runCommand(command: Exclude<Command, { kind: "help" }>, io: CliIO): Promise<ExitCode> {
  switch (command.kind) {
    // Transports load only when a command needs them: help and usage errors stay instant.
    case "hub":
      return (await import("./cli-hub.ts")).runHub(command, io);
    case "listen":
      return (await import("./cli-listen.ts")).runListen(command, io);
    case "mcp": {
      const { serveStdio } = await import("../mcp/stdio.ts");
      const { common } = command;
      await serveStdio(
        {
          explicit: command.explicit,
          hub: common.net,
          ...(common.name !== undefined && { name: common.name }),
          ...(common.purpose !== undefined && { purpose: common.purpose }),
          ...(common.project !== undefined && { project: common.project }),
          ...(command.color !== undefined && { color: command.color }),
          ...(common.url !== undefined && { url: common.url }),
          ...(common.token !== undefined && { token: common.token }),
        },
        io.signal,
      );
      return EXIT.OK;
    }
    case "list":
      return withClient(command.common, async (client) => {
        // The CLI joined to ask; it is not one of the agents the user asked about.
        const agents = (await client.list({ include_explicit: command.all })).filter(
          (a) => a.id !== client.self.id,
        );
        io.stdout(command.common.json ? `${JSON.stringify(agents)}\n` : agentTable(agents));
        return EXIT.OK;
      });
    case "send": {
      const prompt = command.prompt === "-" ? await readStdin() : command.prompt;
      if (prompt.trim() === "") throw new UsageError("the prompt read from stdin is empty", "send");
      return withClient(command.common, async (client) => {
        const ack = await client.send({ to: command.to, prompt });
        if (!command.await) {
          if (command.common.json) io.stdout(`${JSON.stringify({ ack })}\n`);
          else {
            io.stdout(`${ack.msg_id}\n`);
            io.stderr(`${ackLine(ack)}\n`);
          }
          return EXIT.OK;
        }
        const outcome = await waitFor(client, ack.msg_id, command.timeoutMs, `waiting for ${ack.to}`, io);
        return report(outcome, command.common, io, { ack });
      });
    }
    case "get":
      return withClient(command.common, async (client) =>
        report(await client.get(command.msgId), command.common, io),
      );
    case "await":
      return withClient(command.common, async (client) =>
        report(
          await waitFor(client, command.msgId, command.timeoutMs, "waiting for the reply", io),
          command.common,
          io,
        ),
      );
  }
}

async function withClient(
  common: CommonOptions,
  body: (client: OneShotClient) => Promise<ExitCode>,
): Promise<ExitCode> {
  const { connectOneShot } = await import("./cli-connect.ts");
  const client = await connectOneShot(common);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

async function waitFor(
  client: OneShotClient,
  msgId: string,
  timeoutMs: number | undefined,
  label: string,
  io: CliIO,
): Promise<Outcome> {
  const stop = startSpinner(label);
  try {
    return await client.await(msgId, { signal: io.signal, ...(timeoutMs !== undefined && { timeoutMs }) });
  } finally {
    stop();
  }
}

function report(outcome: Outcome, common: CommonOptions, io: CliIO, extra: object = {}): ExitCode {
  if (common.json) io.stdout(`${JSON.stringify({ ...extra, outcome })}\n`);
  else {
    const text = outcomeText(outcome);
    if (text.stdout) io.stdout(text.stdout);
    if (text.stderr) io.stderr(text.stderr);
  }
  return outcome.state === "error" ? exitCodeForOutcome(outcome.code) : EXIT.OK;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

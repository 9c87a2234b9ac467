#!/usr/bin/env node
import { runCli } from "./cli-run.ts";
/** The `pi-coms` executable: wires the process (argv, streams, signals) to runCli. */
import { EXIT } from "./exit-codes.ts";

async function main(): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    // The first signal lets the command leave cleanly; a second one does not wait.
    if (++interrupts > 1) process.exit(EXIT.INTERRUPTED);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const code = await runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    signal: controller.signal,
  });
  process.exitCode = code;
  // Everything was closed; if a library still holds a handle, do not hang the shell.
  setTimeout(() => process.exit(code), 1500).unref();
}

await main();

/** `pi-coms hub start|stop|status`: the project's local hub, found through its discovery file. */
import { ensureHub, findHub, stopHub } from "../hub/client/discovery.ts";
import { hubSettings } from "../lib/env.ts";
import { projectFromCwd } from "../lib/project.ts";
import { type Command, UsageError } from "./cli-args.ts";
import type { CliIO } from "./cli-run.ts";
import { EXIT, type ExitCode } from "./exit-codes.ts";

type HubCommand = Extract<Command, { kind: "hub" }>;

export async function runHub(command: HubCommand, io: CliIO): Promise<ExitCode> {
  const project = command.common.project ?? projectFromCwd();
  const json = command.common.json;
  const out = (value: object, line: string) => io.stdout(json ? `${JSON.stringify(value)}\n` : `${line}\n`);
  switch (command.action) {
    case "start": {
      // The hub refuses this too, but only after a spawn; say it here, as a usage error.
      if (
        command.host !== undefined &&
        !isLoopback(command.host) &&
        !command.common.token &&
        !hubSettings().token
      ) {
        throw new UsageError(
          `--host ${command.host} lets other machines reach the hub: give --auth-token (or set PI_COMS_NET_AUTH_TOKEN) and share it with the clients`,
          "hub",
        );
      }
      const hub = await ensureHub({
        project,
        ...(command.host !== undefined && { host: command.host }),
        ...(command.port !== undefined && { port: command.port }),
        ...(command.common.token !== undefined && { token: command.common.token }),
      });
      out(
        { project, url: hub.url, pid: hub.pid, started: hub.startedByMe },
        `${hub.startedByMe ? "started" : "already running"}: hub for ${project} at ${hub.url} (pid ${hub.pid})`,
      );
      return EXIT.OK;
    }
    case "stop": {
      const stopped = await stopHub(project);
      out(
        { project, stopped },
        stopped ? `stopped the hub for ${project}` : `no hub was running for ${project}`,
      );
      return EXIT.OK;
    }
    case "status": {
      const hub = await findHub(project);
      if (!hub) {
        out({ project, running: false }, `no hub running for ${project}`);
        return EXIT.UNREACHABLE;
      }
      out(
        { project, running: true, url: hub.url, pid: hub.pid },
        `hub for ${project} at ${hub.url} (pid ${hub.pid})`,
      );
      return EXIT.OK;
    }
  }
}

function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** `pi-coms hub start|stop|status|open`: the project's local hub, found through its discovery file. */
import { ensureHub, findHub, readDiscovery, stopHub } from "../hub/client/discovery.ts";
import { hubPaths } from "../hub/paths.ts";
import { readSecret } from "../hub/secret.ts";
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
    case "open":
      return openDashboard(command, project, io);
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

/**
 * Ask the hub for a one-time sign-in code (with the token, which stays here)
 * and print it with the dashboard's URL: the operator types the code into the
 * sign-in form, so the token never goes near a browser or a URL.
 */
async function openDashboard(command: HubCommand, project: string, io: CliIO): Promise<ExitCode> {
  const settings = hubSettings();
  const url = command.common.url ?? settings.serverUrl ?? readDiscovery(project)?.url;
  if (!url) {
    io.stderr(`pi-coms: no hub running for ${project} (start one: pi-coms hub start)\n`);
    return EXIT.UNREACHABLE;
  }
  const token = command.common.token ?? settings.token ?? readSecret(hubPaths(project).secret);
  if (!token) {
    io.stderr(`pi-coms: no hub token: set PI_COMS_NET_AUTH_TOKEN or pass --auth-token\n`);
    return EXIT.AUTH;
  }
  let response: Response;
  try {
    response = await fetch(new URL("/dashboard/code", url), {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    io.stderr(`pi-coms: the hub at ${url} does not answer: ${(error as Error).message}\n`);
    return EXIT.UNREACHABLE;
  }
  if (response.status === 401 || response.status === 429) {
    io.stderr(`pi-coms: the hub refused the token (${response.status}): ${(await response.text()).trim()}\n`);
    return EXIT.AUTH;
  }
  if (!response.ok) {
    io.stderr(`pi-coms: the hub at ${url} answered ${response.status} (too old for a dashboard?)\n`);
    return EXIT.OTHER;
  }
  const { code, expires_in_sec } = (await response.json()) as { code: string; expires_in_sec: number };
  const page = new URL("/", url).href;
  io.stdout(
    command.common.json
      ? `${JSON.stringify({ project, url: page, code, expires_in_sec })}\n`
      : `dashboard: ${page}\none-time code: ${code} (sign in with it within ${expires_in_sec} s; it works once)\n`,
  );
  return EXIT.OK;
}

function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Where the P2P registry and sockets live:
 *   $PI_COMS_DIR/projects/<project>/agents/<name>.json   one entry per running agent
 *   $PI_COMS_DIR/projects/<project>/agents.lock          serialises name claims and pruning
 *   $PI_COMS_DIR/run/<agent id>.sock                     the agent's socket
 * Unix socket paths are limited (~107 bytes on Linux, 103 on macOS); when
 * $PI_COMS_DIR is too deep for that, sockets go to a private per-user
 * directory under the system temp dir instead. The entry records the path.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { comsDir, envString } from "../lib/env.ts";

/** Longest socket path accepted: the smallest common sun_path, minus the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 103;

export function projectDir(project: string, env?: NodeJS.ProcessEnv): string {
  return join(comsDir(env), "projects", project);
}

export function agentsDir(project: string, env?: NodeJS.ProcessEnv): string {
  return join(projectDir(project, env), "agents");
}

export function entryPath(project: string, name: string, env?: NodeJS.ProcessEnv): string {
  return join(agentsDir(project, env), `${name}.json`);
}

export function lockPath(project: string, env?: NodeJS.ProcessEnv): string {
  return join(projectDir(project, env), "agents.lock");
}

/** The socket path for an agent id: under $PI_COMS_DIR/run when short enough, else a private temp dir. */
export function socketPathFor(agentId: string, env?: NodeJS.ProcessEnv): string {
  const preferred = join(comsDir(env), "run", `${agentId}.sock`);
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH_BYTES) return preferred;
  const uid = typeof process.getuid === "function" ? process.getuid() : "user";
  const fallback = join(envString("TMPDIR", env) ?? tmpdir(), `pi-coms-${uid}`, `${agentId}.sock`);
  checkSocketPath(fallback);
  return fallback;
}

export function checkSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `socket path is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte Unix limit: ${path} (use a shorter PI_COMS_DIR or TMPDIR)`,
    );
  }
}

/** Where a project's hub files live: <comsNetDir>/projects/<project>/. */
import { join } from "node:path";
import { comsNetDir } from "../lib/env.ts";

export interface HubPaths {
  dir: string;
  secret: string;
  discovery: string;
  lock: string;
  log: string;
}

export function hubPaths(project: string, env: NodeJS.ProcessEnv = process.env): HubPaths {
  const dir = join(comsNetDir(env), "projects", project);
  return {
    dir,
    secret: join(dir, "server.secret.json"),
    discovery: join(dir, "server.json"),
    lock: join(dir, "start.lock"),
    log: join(dir, "hub.log"),
  };
}

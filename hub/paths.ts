/** Where a project's hub files live: <comsNetDir>/projects/<project>/. */
import { join } from "node:path";
import { comsNetDir } from "../lib/env.ts";
import { checkedProject } from "../lib/project.ts";

export interface HubPaths {
  dir: string;
  secret: string;
  discovery: string;
  lock: string;
  log: string;
}

/** Every way to a project's files comes through here: a name that could leave the projects root is refused. */
export function hubPaths(project: string, env: NodeJS.ProcessEnv = process.env): HubPaths {
  const dir = join(comsNetDir(env), "projects", checkedProject(project));
  return {
    dir,
    secret: join(dir, "server.secret.json"),
    discovery: join(dir, "server.json"),
    lock: join(dir, "start.lock"),
    log: join(dir, "hub.log"),
  };
}

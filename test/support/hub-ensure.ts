/** Child process for the auto-start test: ensureHub for argv[2] and print the handle as JSON. */
import { ensureHub } from "../../hub/client/discovery.ts";

const handle = await ensureHub({ project: process.argv[2] as string, store: "sqlite" });
process.stdout.write(`${JSON.stringify(handle)}\n`);

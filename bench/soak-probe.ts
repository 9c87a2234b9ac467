/**
 * Loaded into the hub process by the soak bench (`node --import`): answers
 * the bench over the IPC channel with the hub's memory figures, and on request
 * runs a full GC first or writes a heap snapshot. Nothing else in the hub
 * changes.
 */
import { setFlagsFromString, writeHeapSnapshot } from "node:v8";
import { runInNewContext } from "node:vm";

type Ask = { id: number; gc?: boolean; snapshot?: string };

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

if (process.send) {
  process.on("message", (ask: Ask) => {
    if (ask.gc) gc();
    const file = ask.snapshot ? writeHeapSnapshot(ask.snapshot) : undefined;
    process.send?.({ id: ask.id, memory: process.memoryUsage(), ...(file ? { snapshot: file } : {}) });
  });
  // The channel must not keep a hub alive that was asked to stop, and a bench that died takes its hub along.
  process.channel?.unref();
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}

/**
 * pi-coms: let pi sessions message each other over P2P sockets (/coms) and
 * a networked hub (/coms-net). This file only wires pi's events to the
 * modules that do the work. What it imports here is kept small (no contract,
 * zod, tRPC or transport): tools, parsers and transports load when a system
 * starts or a command runs, so a session that never uses coms barely pays.
 */
import type { ExtensionAPI } from "@earendil-works/pi-coding-agent";
import { registerCliFlags } from "./cli-flags.ts";
import { registerCommands } from "./commands.ts";
import { registerRenderers } from "./renderer.ts";
import { ComsRuntime } from "./runtime.ts";

export default function piComs(pi: ExtensionAPI): void {
  const rt = new ComsRuntime(pi);
  registerCliFlags(pi);
  registerCommands(rt);
  registerRenderers(pi);

  pi.on("session_start", async (event, ctx) => {
    rt.useContext(ctx);
    rt.adopt();
    if (event.reason === "startup") await autoStart(rt, ctx.cwd, (msg) => ctx.ui.notify(msg, "error"));
    await rt.syncTools();
    rt.publishCard();
    rt.redraw();
    // Prompts that arrived while the previous instance was unloading.
    if (rt.state.queue.length) rt.delivery.arrived();
  });

  pi.on("session_shutdown", async (event) => {
    rt.release();
    // Reload and session switches keep the systems (same process, same identity); only quitting leaves.
    if (event.reason !== "quit") return;
    if (!rt.state.p2p && !rt.state.hub) return;
    const { stopSystem } = await import("./systems.ts");
    await Promise.all([stopSystem(rt.state, "p2p"), stopSystem(rt.state, "hub")]);
  });

  pi.on("agent_start", (_event, ctx) => {
    rt.useContext(ctx);
    rt.delivery.agentStarted();
    rt.publishCard();
  });
  pi.on("message_end", async (event, ctx) => {
    rt.useContext(ctx);
    await rt.delivery.messageEnded(ctx, event.message as Parameters<typeof rt.delivery.messageEnded>[1]);
  });
  pi.on("turn_end", (_event, ctx) => {
    rt.useContext(ctx);
    rt.publishCard();
  });
  pi.on("model_select", (_event, ctx) => {
    rt.useContext(ctx);
    rt.publishCard();
    rt.redraw();
  });
  pi.on("agent_settled", async (_event, ctx) => {
    rt.useContext(ctx);
    await rt.delivery.settled(ctx);
    rt.publishCard();
    rt.redraw();
  });
}

/** `pi --coms` / `pi --coms-net` start the systems with the command-line identity. */
async function autoStart(rt: ComsRuntime, cwd: string, report: (message: string) => void): Promise<void> {
  const wantP2P = rt.pi.getFlag("coms") === true && !rt.state.p2p;
  const wantHub = rt.pi.getFlag("coms-net") === true && !rt.state.hub;
  if (!wantP2P && !wantHub) return;
  const { flags, errors } = await rt.cliDefaults();
  if (errors.length) report(`pi-coms: ${errors.join("; ")}`);
  const start = { cwd, model: rt.modelName() };
  const { startHubSystem, startP2PSystem } = await import("./systems.ts");
  if (wantP2P) await startP2PSystem(rt.state, flags, start).catch((e: Error) => report(`coms: ${e.message}`));
  if (wantHub)
    await startHubSystem(rt.state, "start", flags, start).catch((e: Error) =>
      report(`coms-net: ${e.message}`),
    );
}

/**
 * pi-coms: let pi sessions message each other over P2P sockets (/coms) and
 * a networked hub (/coms-net). At load this file registers the command-line
 * flags (cli-flags.ts), the commands and pi's event hooks, and imports
 * nothing else: the runtime (widget, inbound delivery, renderers), the
 * parsers, the contract and the transports load on first use (a command,
 * `--coms`, or a session that already has coms state or coms entries), so a
 * session that never uses coms pays for little more than pi's own
 * extension loader.
 */
import type { ExtensionAPI, ExtensionContext } from "@earendil-works/pi-coding-agent";
import { registerCliFlags } from "./cli-flags.ts";
import type { ComsRuntime } from "./runtime.ts";

/** The custom types pi-coms writes into a session (see messages.ts); their renderers load with the runtime. */
const ENTRY_TYPE = /^coms-(inbound|resume|reply|notice)$/;
/** Set by state.ts once coms is used in this process; it survives /reload. */
const STATE_SLOT = Symbol.for("pi-coms.plugin.state.v1");

export default function piComs(pi: ExtensionAPI): void {
  registerCliFlags(pi);

  let rt: ComsRuntime | undefined;
  let loading: Promise<ComsRuntime> | undefined;
  const runtime = (): Promise<ComsRuntime> => {
    loading ??= Promise.all([import("./runtime.ts"), import("./renderer.ts")]).then(
      ([{ ComsRuntime }, { registerRenderers }]) => {
        registerRenderers(pi);
        rt = new ComsRuntime(pi);
        rt.adopt();
        return rt;
      },
    );
    return loading;
  };
  const complete = (command: "coms" | "coms-net") => async (prefix: string) =>
    (await import("./completion.ts")).completeArgs(command, prefix);

  pi.registerCommand("coms", {
    description: "P2P coms between pi sessions: /coms start|stop|status (bare: refresh the pool widget)",
    getArgumentCompletions: complete("coms"),
    handler: async (args, ctx) => {
      const [r, { comsCommand }] = await Promise.all([runtime(), import("./commands.ts")]);
      await comsCommand(r, args, ctx);
    },
  });
  pi.registerCommand("coms-net", {
    description:
      "Networked coms over a hub: /coms-net start|connect|disconnect|stop|status (bare: refresh the pool widget)",
    getArgumentCompletions: complete("coms-net"),
    handler: async (args, ctx) => {
      const [r, { comsNetCommand }] = await Promise.all([runtime(), import("./commands.ts")]);
      await comsNetCommand(r, args, ctx);
    },
  });
  pi.registerCommand("create-coms-feature-manager", {
    description:
      "Write .pi/prompts/coms-feature-manager.md: a manager/coder review loop over coms for this project",
    handler: async (_args, ctx) => (await import("./commands.ts")).createFeatureManagerCommand(ctx),
  });

  pi.on("session_start", async (event, ctx) => {
    await import("./pi-version.ts")
      .then(({ warnIfUnsupportedPi }) => warnIfUnsupportedPi((message) => ctx.ui.notify(message, "warning")))
      .catch(() => undefined);
    const autoStart =
      event.reason === "startup" && (pi.getFlag("coms") === true || pi.getFlag("coms-net") === true);
    if (!rt && !autoStart && !inUse() && !hasComsEntries(ctx)) return;
    await (await runtime()).sessionStarted(event.reason, ctx);
  });

  pi.on("session_shutdown", async (event) => {
    if (!rt) return;
    rt.release();
    // Reload and session switches keep the systems (same process, same identity); only quitting leaves.
    if (event.reason !== "quit") return;
    if (!rt.state.p2p && !rt.state.hub) return;
    const { stopSystem } = await import("./systems.ts");
    await Promise.all([stopSystem(rt.state, "p2p"), stopSystem(rt.state, "hub")]);
  });

  // Until coms is used in this process there is nothing to deliver, publish or draw.
  pi.on("agent_start", (_event, ctx) => {
    if (!rt) return;
    rt.useContext(ctx);
    rt.delivery.agentStarted();
    rt.publishCard();
  });
  pi.on("message_end", async (event, ctx) => {
    if (!rt) return;
    rt.useContext(ctx);
    await rt.delivery.messageEnded(
      ctx,
      event.message as Parameters<ComsRuntime["delivery"]["messageEnded"]>[1],
    );
  });
  pi.on("turn_end", (_event, ctx) => {
    if (!rt) return;
    rt.useContext(ctx);
    rt.publishCard();
  });
  pi.on("model_select", (_event, ctx) => {
    if (!rt) return;
    rt.useContext(ctx);
    rt.publishCard();
    rt.redraw();
  });
  pi.on("agent_settled", async (_event, ctx) => {
    if (!rt) return;
    rt.useContext(ctx);
    await rt.delivery.settled(ctx);
    rt.publishCard();
    rt.redraw();
  });
}

function inUse(): boolean {
  return (globalThis as Record<symbol, unknown>)[STATE_SLOT] !== undefined;
}

/** A resumed session with coms entries needs their renderers before it is drawn. */
function hasComsEntries(ctx: ExtensionContext): boolean {
  try {
    return ctx.sessionManager
      .getEntries()
      .some(
        (entry) =>
          "customType" in entry && typeof entry.customType === "string" && ENTRY_TYPE.test(entry.customType),
      );
  } catch {
    return false;
  }
}

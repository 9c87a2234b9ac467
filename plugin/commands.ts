/**
 * `/coms`, `/coms-net` and `/create-coms-feature-manager`: parse, act,
 * report. Every failure becomes a clear notification and changes nothing.
 * What a handler needs (parser, systems, generator) loads when it runs.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ExtensionCommandContext } from "@earendil-works/pi-coding-agent";
import type { IdentityFlags, NetFlags } from "./flags.ts";
import type { ComsRuntime } from "./runtime.ts";
import type { SystemSlot } from "./state.ts";
import { connectionSentence } from "./widget.ts";

function peerSummary(slot: SystemSlot): string {
  const others = slot.peers.filter(
    (p) => p.id !== slot.client.self.id && p.status !== "offline" && !p.explicit,
  );
  return others.length ? `${others.length} peer(s): ${others.map((p) => p.name).join(", ")}` : "no peers yet";
}

export function comsStatus(rt: ComsRuntime): string {
  const slot = rt.state.p2p;
  if (!slot) return "coms (P2P): inactive. Start it with /coms start --name <name>.";
  const self = slot.client.self;
  return `coms (P2P): active as ${self.name}${self.explicit ? " (explicit)" : ""} in project ${slot.project}; ${peerSummary(slot)}.`;
}

export function comsNetStatus(rt: ComsRuntime): string {
  const slot = rt.state.hub;
  if (!slot) {
    const hosted = rt.state.hostedHub
      ? ` This session started the hub of project ${rt.state.hostedHub.project}; /coms-net stop shuts it down.`
      : "";
    return `coms-net: inactive.${hosted} Start it with /coms-net start --name <name>.`;
  }
  const self = slot.client.self;
  return `coms-net: active as ${self.name} in project ${slot.project}; hub ${slot.url ?? "(unknown URL)"}; started by this session: ${
    slot.startedHub ? "yes" : "no"
  }; ${peerSummary(slot)}.${connectionSentence(slot)}`;
}

async function refresh(slot: SystemSlot | null): Promise<void> {
  if (!slot) return;
  slot.peers = await slot.client.list({ include_explicit: true });
}

/** The identity flags that carry over from one system's start to the other's. */
const CARRIED = ["name", "purpose", "color", "explicit"] as const;

/**
 * The flags a start uses: typed in this command, else chosen for this
 * session in an earlier start (on either system), else the pi command line.
 */
async function identity<T extends IdentityFlags>(
  rt: ComsRuntime,
  ctx: ExtensionCommandContext,
  typed: T,
): Promise<T> {
  const { withDefaults } = await import("./flags.ts");
  const { flags, errors } = await rt.cliDefaults();
  if (errors.length) {
    ctx.ui.notify(`pi-coms: ignoring command-line flags: ${errors.join("; ")}`, "warning");
  }
  return withDefaults(typed, withDefaults(rt.state.chosen, flags));
}

/** Remember the identity typed in a successful start for the other system. */
function remember(rt: ComsRuntime, typed: IdentityFlags): void {
  for (const key of CARRIED)
    if (typed[key] !== undefined) (rt.state.chosen as Record<string, unknown>)[key] = typed[key];
}

async function run(ctx: ExtensionCommandContext, what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    ctx.ui.notify(`${what}: ${(error as Error).message}`, "error");
  }
}

/** `/coms start|stop|status` (bare: refresh the pool widget). */
export function comsCommand(rt: ComsRuntime, args: string, ctx: ExtensionCommandContext): Promise<void> {
  return run(ctx, "coms", async () => {
    rt.useContext(ctx);
    const cmd = (await import("./flags.ts")).parseComs(args);
    const { startP2PSystem, stopSystem } = await import("./systems.ts");
    const state = rt.state;
    switch (cmd.action) {
      case "start": {
        const flags = await identity(rt, ctx, cmd.flags);
        const slot = await startP2PSystem(state, flags, { cwd: ctx.cwd, model: rt.modelName() });
        remember(rt, cmd.flags);
        await rt.syncTools();
        rt.publishCard();
        rt.redraw();
        ctx.ui.notify(
          `coms active as ${slot.client.self.name} in project ${slot.project}; ${peerSummary(slot)}.`,
          "info",
        );
        return;
      }
      case "stop": {
        if (!state.p2p) {
          ctx.ui.notify("coms is not active.", "info");
          return;
        }
        const notes = await stopSystem(state, "p2p");
        await rt.syncTools();
        rt.redraw();
        ctx.ui.notify(["coms stopped.", ...notes].join(" "), "info");
        return;
      }
      case "status":
        await refresh(state.p2p).catch(() => undefined);
        rt.redraw();
        ctx.ui.notify(comsStatus(rt), "info");
        return;
      case "refresh":
        if (!state.p2p) {
          ctx.ui.notify("coms is not active. Start it with /coms start --name <name>.", "info");
          return;
        }
        await refresh(state.p2p);
        rt.redraw();
        ctx.ui.notify(`coms: ${peerSummary(state.p2p)}.`, "info");
        return;
    }
  });
}

/** `/coms-net start|connect|disconnect|stop|status` (bare: refresh the pool widget). */
export function comsNetCommand(rt: ComsRuntime, args: string, ctx: ExtensionCommandContext): Promise<void> {
  return run(ctx, "coms-net", async () => {
    rt.useContext(ctx);
    const cmd = (await import("./flags.ts")).parseComsNet(args);
    const { hostsHub, startHubSystem, stopHostedHub, stopSystem } = await import("./systems.ts");
    const state = rt.state;
    switch (cmd.action) {
      case "start":
      case "connect": {
        const flags: NetFlags = await identity(rt, ctx, cmd.flags);
        const hostedBefore = state.hostedHub;
        const slot = await startHubSystem(state, cmd.action, flags, {
          cwd: ctx.cwd,
          model: rt.modelName(),
        });
        remember(rt, cmd.flags);
        await rt.syncTools();
        rt.publishCard();
        rt.redraw();
        const how =
          state.hostedHub !== hostedBefore
            ? "started the hub at"
            : `joined the hub${slot.startedHub ? " this session started" : ""} at`;
        ctx.ui.notify(
          `coms-net active as ${slot.client.self.name}; ${how} ${slot.url ?? "(unknown URL)"}; ${peerSummary(slot)}.`,
          "info",
        );
        return;
      }
      case "disconnect": {
        if (!state.hub) {
          ctx.ui.notify("coms-net is not active.", "info");
          return;
        }
        const notes = await stopSystem(state, "hub");
        await rt.syncTools();
        rt.redraw();
        ctx.ui.notify(["coms-net disconnected; the hub keeps running.", ...notes].join(" "), "info");
        return;
      }
      case "stop": {
        if (!state.hub && !state.hostedHub) {
          ctx.ui.notify("coms-net is not active.", "info");
          return;
        }
        const notes = await stopSystem(state, "hub");
        notes.push(await stopHostedHub(state));
        await rt.syncTools();
        rt.redraw();
        ctx.ui.notify(["coms-net stopped:", ...notes].join(" "), "info");
        return;
      }
      case "status":
        await refresh(state.hub).catch(() => undefined);
        // Asked again, not remembered: the hosted hub may have died or been replaced since.
        if (state.hub) state.hub.startedHub = await hostsHub(state, state.hub);
        rt.redraw();
        ctx.ui.notify(comsNetStatus(rt), "info");
        return;
      case "refresh":
        if (!state.hub) {
          ctx.ui.notify("coms-net is not active. Start it with /coms-net start --name <name>.", "info");
          return;
        }
        await refresh(state.hub);
        rt.redraw();
        ctx.ui.notify(`coms-net: ${peerSummary(state.hub)}.`, "info");
        return;
    }
  });
}

/** `/create-coms-feature-manager`: write the manager/coder prompt template for this project. */
export function createFeatureManagerCommand(ctx: ExtensionCommandContext): Promise<void> {
  return run(ctx, "create-coms-feature-manager", async () => {
    const { detectProject, FEATURE_MANAGER_PATH, renderFeatureManager } = await import(
      "./feature-manager.ts"
    );
    const path = join(ctx.cwd, FEATURE_MANAGER_PATH);
    if (existsSync(path)) {
      const overwrite = ctx.hasUI
        ? await ctx.ui.confirm(
            "Overwrite the coms feature manager?",
            `${FEATURE_MANAGER_PATH} already exists.`,
          )
        : false;
      if (!overwrite) {
        ctx.ui.notify(`Kept the existing ${FEATURE_MANAGER_PATH}; nothing was written.`, "info");
        return;
      }
    }
    const info = detectProject(ctx.cwd);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, renderFeatureManager(info));
    const found = [
      info.languages.join(" + ") || "language not detected",
      info.testCommand ?? "no test command found",
    ];
    ctx.ui.notify(
      `Wrote ${FEATURE_MANAGER_PATH} (${found.join("; ")}). Run /reload, start coms in both sessions, then use /coms-feature-manager <feature> in the manager session.`,
      "info",
    );
  });
}

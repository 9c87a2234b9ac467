/**
 * One loaded instance of the extension: the pi API it was given, the
 * freshest context, inbound delivery, and the small chores every event
 * needs (redraw, active tools, the card peers see).
 */
import type { ExtensionAPI, ExtensionContext } from "@earendil-works/pi-coding-agent";
import { toolNames } from "../tools/names.ts";
import type { IdentityFlags } from "./flags.ts";
import { InboundDelivery } from "./inbound.ts";
import { type ComsState, comsState, type SystemKind } from "./state.ts";
import { render } from "./widget.ts";

export class ComsRuntime {
  readonly pi: ExtensionAPI;
  readonly state: ComsState;
  readonly delivery: InboundDelivery;
  ctx: ExtensionContext | undefined;
  /** Systems whose tools this module instance has registered with pi. */
  private readonly registered = new Set<SystemKind>();

  constructor(pi: ExtensionAPI) {
    this.pi = pi;
    this.state = comsState();
    this.delivery = new InboundDelivery(pi, this.state, () => {
      this.publishCard();
      this.redraw();
    });
  }

  useContext(ctx: ExtensionContext): void {
    this.ctx = ctx;
    this.delivery.useContext(ctx);
  }

  /**
   * A pi session began (startup, reload, switch): take over the state, start
   * what `--coms` / `--coms-net` ask for at startup, and show where things stand.
   */
  async sessionStarted(reason: string, ctx: ExtensionContext): Promise<void> {
    this.useContext(ctx);
    this.adopt();
    if (reason === "startup") await this.autoStart(ctx.cwd, (msg) => ctx.ui.notify(msg, "error"));
    await this.syncTools();
    this.publishCard();
    this.redraw();
    // Prompts that arrived while the previous instance was unloading.
    if (this.state.queue.length) this.delivery.arrived();
  }

  /** `pi --coms` / `pi --coms-net` start the systems with the command-line identity. */
  private async autoStart(cwd: string, report: (message: string) => void): Promise<void> {
    const wantP2P = this.pi.getFlag("coms") === true && !this.state.p2p;
    const wantHub = this.pi.getFlag("coms-net") === true && !this.state.hub;
    if (!wantP2P && !wantHub) return;
    const { flags, errors } = await this.cliDefaults();
    if (errors.length) report(`pi-coms: ${errors.join("; ")}`);
    const start = { cwd, model: this.modelName() };
    const { startHubSystem, startP2PSystem } = await import("./systems.ts");
    if (wantP2P)
      await startP2PSystem(this.state, flags, start).catch((e: Error) => report(`coms: ${e.message}`));
    if (wantHub)
      await startHubSystem(this.state, "start", flags, start).catch((e: Error) =>
        report(`coms-net: ${e.message}`),
      );
  }

  /** Take over the process-wide state: route client callbacks to this instance. */
  adopt(): void {
    this.state.hooks = {
      inbound: () => this.delivery.arrived(),
      peers: () => this.redraw(),
    };
  }

  release(): void {
    if (this.state.hooks) this.state.hooks = null;
  }

  redraw(): void {
    render(this.state, this.ctx, this.delivery.depth);
  }

  /**
   * Tools exist for the model only while their system is active. Their
   * definitions (and the zod schemas they derive from) load with the first
   * system, so a session that never starts coms never pays for them.
   */
  async syncTools(): Promise<void> {
    const active: SystemKind[] = [];
    if (this.state.p2p) active.push("p2p");
    if (this.state.hub) active.push("hub");
    const missing = active.filter((kind) => !this.registered.has(kind));
    if (missing.length) {
      const { toolsFor } = await import("./tools.ts");
      const env = { state: this.state, delivery: () => this.delivery };
      for (const kind of missing) {
        for (const tool of toolsFor(kind, env)) this.pi.registerTool(tool);
        this.registered.add(kind);
      }
    }
    const mine = new Set([...toolNames("p2p"), ...toolNames("hub")]);
    const wanted = [...(this.state.p2p ? toolNames("p2p") : []), ...(this.state.hub ? toolNames("hub") : [])];
    try {
      const current = this.pi.getActiveTools();
      const next = [...current.filter((name) => !mine.has(name)), ...wanted];
      const same = next.length === current.length && next.every((name) => current.includes(name));
      if (!same) this.pi.setActiveTools(next);
    } catch {
      // called before pi bound the runtime; session_start syncs again
    }
  }

  /** What peers see of this agent: model, context use, queue depth. */
  publishCard(): void {
    const ctx = this.ctx;
    let model = "";
    let pct: number | null = null;
    try {
      model = ctx?.model ? `${ctx.model.provider}/${ctx.model.id}` : "";
      const usage = ctx?.getContextUsage();
      pct = usage?.percent == null ? null : Math.max(0, Math.min(100, Math.round(usage.percent)));
    } catch {
      return;
    }
    for (const slot of [this.state.p2p, this.state.hub]) {
      try {
        slot?.client.updateCard({
          model: model.slice(0, 200),
          context_used_pct: pct,
          queue_depth: this.delivery.depth,
        });
      } catch {
        // best effort: the next heartbeat carries it
      }
    }
  }

  modelName(): string {
    try {
      return this.ctx?.model ? `${this.ctx.model.provider}/${this.ctx.model.id}`.slice(0, 200) : "";
    } catch {
      return "";
    }
  }

  /**
   * Identity defaults from the pi command line, errors reported once per use.
   * Without a name there, the session's own: derived from the pi session id,
   * so both systems use it and it stays across stop/start and /reload.
   */
  async cliDefaults(): Promise<{ flags: IdentityFlags; errors: string[] }> {
    let result: { flags: IdentityFlags; errors: string[] };
    try {
      const { cliIdentity } = await import("./flags.ts");
      result = cliIdentity(this.pi);
    } catch (error) {
      result = { flags: {}, errors: [(error as Error).message] };
    }
    result.flags.name ??= await this.sessionAgentName();
    return result;
  }

  private async sessionAgentName(): Promise<string | undefined> {
    let id: string;
    try {
      id = this.ctx?.sessionManager.getSessionId() ?? "";
    } catch {
      return undefined; // a context of an unloaded runtime: the system picks a name
    }
    if (!id) return undefined;
    const { generatedName } = await import("../lib/agent-name.ts");
    return generatedName(id);
  }
}

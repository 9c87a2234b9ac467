/**
 * This agent's card and the heartbeat that keeps it on the hub. A card
 * change goes at once as a patch (an unchanged one costs nothing); one
 * heartbeat is in flight at a time, and a change made meanwhile goes right
 * after it. The timer's beat is skipped while the hub counts an open inbox
 * stream as proof of life and the card is unchanged, so an idle crowd of
 * streaming clients costs the hub no heartbeat traffic.
 */
import type { AgentCard, CardPatch } from "../../contract/schemas.ts";

export interface CardPresenceOptions {
  /** Send one heartbeat with this patch: the card the hub now holds, or undefined if it was not sent or failed. */
  send(patch: CardPatch): Promise<AgentCard | undefined>;
  /** The hub takes the open inbox stream as proof of life now (the timer's beat may be skipped). */
  streamVouches(): boolean;
}

export class CardPresence {
  /** The card as the hub last returned it, with this client's later patches on top. */
  card: AgentCard | undefined;
  private patch: CardPatch = {};
  /** The patch as the hub last took it (undefined: none since registering). */
  private sentPatch: CardPatch | undefined;
  private heartbeating: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: CardPresenceOptions;

  constructor(opts: CardPresenceOptions) {
    this.opts = opts;
  }

  /** Registered (again): the hub holds the registered card, without any patch made since start. */
  registered(card: AgentCard): void {
    this.card = card;
    this.sentPatch = undefined;
    if (Object.keys(this.patch).length > 0) void this.heartbeat();
  }

  /** Tell the hub at once when something on the card changed. */
  update(patch: CardPatch): void {
    this.patch = { ...this.patch, ...patch };
    if (this.card) this.card = { ...this.card, ...patch };
    if (!this.patchSent()) void this.heartbeat();
  }

  /** Beat every `intervalMs` until stopped (the timer does not keep the process alive). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.beat(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * The timer's beat. A hub that counts an open inbox stream as proof of life
   * hears nothing while the stream is open and the card unchanged; otherwise
   * (no stream, an older hub) this is the heartbeat that keeps the agent online.
   */
  private beat(): Promise<void> {
    if (this.heartbeating) return this.heartbeating;
    if (this.opts.streamVouches() && this.patchSent()) return Promise.resolve();
    return this.heartbeat();
  }

  /** Whether the hub has the card as this client last patched it. */
  private patchSent(): boolean {
    const sent = this.sentPatch;
    const keys = Object.keys(this.patch) as Array<keyof CardPatch>;
    if (!sent) return keys.length === 0;
    return keys.every((key) => sent[key] === this.patch[key]);
  }

  /** One heartbeat at a time; a change made meanwhile goes once it is done. */
  private heartbeat(): Promise<void> {
    if (this.heartbeating) {
      return this.heartbeating.then(() => (this.patchSent() ? undefined : this.heartbeat()));
    }
    const beating = this.sendPatch().finally(() => {
      this.heartbeating = undefined;
    });
    this.heartbeating = beating;
    return beating;
  }

  private async sendPatch(): Promise<void> {
    const patch = { ...this.patch };
    const card = await this.opts.send(patch);
    if (!card) return;
    this.card = card;
    this.sentPatch = patch;
  }
}

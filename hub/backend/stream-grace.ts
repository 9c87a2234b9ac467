/**
 * Agents whose last inbox stream closed, each given a short grace to open
 * another. A client whose stream is cut reconnects at once and resumes; a
 * process that died does not come back, and what it held is then ended by
 * `gone` within the grace instead of at the presence timeouts.
 */
export class StreamGrace {
  private readonly graceMs: number;
  private readonly gone: (agentId: string) => void;
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** `graceMs` 0: never (presence alone decides). */
  constructor(graceMs: number, gone: (agentId: string) => void) {
    this.graceMs = graceMs;
    this.gone = gone;
  }

  /** The agent has no inbox stream open any more. */
  closed(agentId: string): void {
    if (this.graceMs <= 0 || this.timers.has(agentId)) return;
    const timer = setTimeout(() => {
      this.timers.delete(agentId);
      this.gone(agentId);
    }, this.graceMs);
    timer.unref();
    this.timers.set(agentId, timer);
  }

  /** The agent opened a stream again, or left: no verdict to give. */
  opened(agentId: string): void {
    const timer = this.timers.get(agentId);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(agentId);
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

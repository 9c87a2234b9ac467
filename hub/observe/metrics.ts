/**
 * The hub's Prometheus metrics (prom-client, one registry per hub so several
 * hubs in one process do not mix). Counters and histograms follow the
 * backend's events; gauges are read from the hub at scrape time. The message
 * counters are plain numbers per event, handed to prom-client at scrape time:
 * exact, without a labels object and a label hash per message.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { HubBackend } from "../backend/backend.ts";
import type { HubEvent } from "../backend/events.ts";
import type { AdminFeed } from "./admin-feed.ts";

/** Seconds: from 1 ms (hub-local delivery) to half an hour (a long agent turn). */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800];
const STORE_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

export type AuthFailureReason = "missing" | "wrong" | "locked";

export class HubMetrics {
  readonly registry = new Registry();
  private sentCount = 0;
  private deliveredCount = 0;
  /** Outcome ("reply" or an error code) → messages settled with it. */
  private readonly settledCounts = new Map<string, number>();
  /** Error code → sends refused with it. */
  private readonly refusedCounts = new Map<string, number>();
  private readonly authFailures: Counter<"reason">;
  private readonly toDelivered: DeferredHistogram;
  private readonly toReply: DeferredHistogram;
  private readonly storeFlush: DeferredHistogram;
  private readonly stop: () => void;
  /** Open /mcp sessions: told by the route once it exists (it is made after the metrics). */
  private mcpSessions: () => number = () => 0;

  constructor(backend: HubBackend, feed: AdminFeed) {
    const registers = [this.registry];
    const metrics = this;
    new Counter({
      name: "pi_coms_messages_sent_total",
      help: "Messages accepted and queued by the hub",
      registers,
      collect() {
        this.reset();
        this.inc(metrics.sentCount);
      },
    });
    new Counter({
      name: "pi_coms_messages_delivered_total",
      help: "Messages whose recipient acknowledged receipt",
      registers,
      collect() {
        this.reset();
        this.inc(metrics.deliveredCount);
      },
    });
    new Counter({
      name: "pi_coms_messages_settled_total",
      help: "Messages made final, by outcome: reply, or the error code (EXPIRED, PEER_GONE, ...)",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, n] of metrics.settledCounts) this.inc({ outcome }, n);
      },
    });
    new Counter({
      name: "pi_coms_sends_refused_total",
      help: "Sends the hub refused (nothing queued), by error code; RATE_LIMITED counts rate-limited sends",
      labelNames: ["code"],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of metrics.refusedCounts) this.inc({ code }, n);
      },
    });
    this.authFailures = new Counter({
      name: "pi_coms_auth_failures_total",
      help: "Requests refused for the hub token (missing, wrong, or refused while the address is locked out)",
      labelNames: ["reason"],
      registers,
    });
    this.toDelivered = new DeferredHistogram({
      name: "pi_coms_send_to_delivered_seconds",
      help: "Time from a message's acceptance to the recipient's acknowledgement",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.toReply = new DeferredHistogram({
      name: "pi_coms_send_to_reply_seconds",
      help: "Time from a message's acceptance to its reply",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.storeFlush = new DeferredHistogram({
      name: "pi_coms_store_flush_seconds",
      help: "Time the hub waited for its store to make changes durable (one flush)",
      buckets: STORE_BUCKETS,
      registers,
    });
    new Gauge({
      name: "pi_coms_queue_depth",
      help: "Unsettled messages per recipient agent",
      labelNames: ["agent"],
      registers,
      collect() {
        this.reset();
        for (const [agent, depth] of backend.queueDepths()) this.set({ agent }, depth);
      },
    });
    new Gauge({
      name: "pi_coms_hub_queued_bytes",
      help: "Bytes of unanswered messages and untaken replies the hub holds (bounded by --max-queued-bytes)",
      registers,
      collect() {
        this.set(backend.queuedBytes);
      },
    });
    new Gauge({
      name: "pi_coms_agent_held_bytes",
      help: "Bytes held for each sending agent: its unanswered messages and the replies it has not taken (bounded by --max-queued-bytes-per-agent)",
      labelNames: ["agent"],
      registers,
      collect() {
        this.reset();
        for (const [agent, bytes] of backend.heldBytes()) this.set({ agent }, bytes);
      },
    });
    new Gauge({
      name: "pi_coms_agents",
      help: "Registered agents by presence status",
      labelNames: ["status"],
      registers,
      collect() {
        for (const [status, n] of Object.entries(backend.statusCounts())) this.set({ status }, n);
      },
    });
    new Gauge({
      name: "pi_coms_streams",
      help: "Open SSE streams: agents' inboxes and operators' dashboards",
      labelNames: ["kind"],
      registers,
      collect() {
        this.set({ kind: "inbox" }, backend.openStreams);
        this.set({ kind: "dashboard" }, feed.subscriberCount);
      },
    });
    new Gauge({
      name: "pi_coms_mcp_sessions",
      help: "Open MCP sessions on /mcp (each one an agent)",
      registers,
      collect() {
        this.set(metrics.mcpSessions());
      },
    });
    this.stop = backend.events.on((event) => this.apply(event));
  }

  private apply(event: HubEvent): void {
    switch (event.type) {
      case "sent":
        this.sentCount += 1;
        return;
      case "delivered":
        this.deliveredCount += 1;
        this.toDelivered.observe(seconds(event.at - event.message.created_at));
        return;
      case "settled": {
        // The message was counted when it first settled.
        if (event.replaced) return;
        const outcome = event.outcome.state === "error" ? event.outcome.code : event.outcome.state;
        this.settledCounts.set(outcome, (this.settledCounts.get(outcome) ?? 0) + 1);
        if (event.outcome.state === "reply")
          this.toReply.observe(seconds(event.at - event.message.created_at));
        return;
      }
      case "refused":
        this.refusedCounts.set(event.code, (this.refusedCounts.get(event.code) ?? 0) + 1);
        return;
      default:
        return;
    }
  }

  authFailure(reason: AuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  countMcpSessions(count: () => number): void {
    this.mcpSessions = count;
  }

  storeFlushed(ms: number): void {
    this.storeFlush.observe(ms / 1000);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.stop();
  }
}

/**
 * A histogram whose observations are kept as plain numbers and handed to
 * prom-client when scraped (or once many have gathered): the same exposition,
 * without prom-client's per-observation label handling on every message.
 */
class DeferredHistogram {
  private readonly histogram: Histogram;
  private pending: number[] = [];

  constructor(config: { name: string; help: string; buckets: number[]; registers: Registry[] }) {
    const deferred = this;
    this.histogram = new Histogram({
      ...config,
      collect() {
        deferred.apply();
      },
    });
  }

  observe(value: number): void {
    this.pending.push(value);
    // Bounded even when nobody scrapes.
    if (this.pending.length >= 4096) this.apply();
  }

  private apply(): void {
    const values = this.pending;
    this.pending = [];
    for (const value of values) this.histogram.observe(value);
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}

/**
 * A small EventSource over fetch, for tRPC's httpSubscriptionLink. Node 22 has
 * no EventSource that sends headers, and the hub token must travel in a
 * header, never in a URL. Behaves like the browser one where the link cares:
 * reconnects after a dropped stream with `Last-Event-ID`, honours `retry:`,
 * and fails for good (readyState CLOSED) on a non-SSE answer such as a 401.
 *
 * A stream that stays silent past its deadline is given up and reopened,
 * and so is an attempt whose answer does not start within it (a hung hub
 * still accepts connections): the deadline is `inactivityMs`, or what the
 * hub announced in its `connected` event (tRPC's reconnectAfterInactivityMs),
 * which follows its ping rate. The error event then says `silent`.
 *
 * An `id:` line only counts once its event is complete (the blank line that
 * dispatches it, as the SSE spec's "last event ID buffer" does): a stream cut
 * between an event's `id:` line and its end must resume *before* that event,
 * or the event is lost for good.
 */

export interface FetchEventSourceInit {
  /** Sent with every (re)connection; a function is asked again each time (rotated credentials). */
  headers?: Record<string, string> | (() => Record<string, string>);
  /** First reconnect delay in ms (doubles up to maxRetryMs while the server stays away). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Reconnect (with Last-Event-ID) when nothing, not even a ping, arrived for this long. */
  inactivityMs?: number;
  fetch?: typeof fetch;
}

export interface SseMessageEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/** The error event: an Error so that tRPC's client error keeps its message; `status` is set for HTTP refusals. */
export interface SseErrorEvent extends Error {
  type: "error";
  status?: number;
  /** The stream (or the attempt to open it) went silent past its deadline. */
  silent?: boolean;
}

/** A deadline a hub announces is taken within these bounds (a broken hub must not cause a reconnect storm). */
const MIN_ANNOUNCED_MS = 1_000;
const MAX_ANNOUNCED_MS = 300_000;

class Silence extends Error {}

type Listener = (event: never) => void;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

export class FetchEventSource {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSED = CLOSED;
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSED = CLOSED;
  readonly url: string;
  readonly withCredentials = false;
  readyState: number = CONNECTING;
  lastEventId = "";
  onopen: ((event: { type: "open" }) => void) | null = null;
  onmessage: ((event: SseMessageEvent) => void) | null = null;
  onerror: ((event: SseErrorEvent) => void) | null = null;
  private readonly init: FetchEventSourceInit;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly abort = new AbortController();
  private retryMs: number;
  /** The current stream dispatched an event with a new id: if it drops, reconnect without waiting. */
  private progressed = false;
  /** The silence deadline now: the configured one until the hub announces its own. */
  private inactivityMs: number | undefined;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(url: string | URL, init: FetchEventSourceInit = {}) {
    this.url = String(url);
    this.init = init;
    this.retryMs = init.retryMs ?? 250;
    this.inactivityMs = init.inactivityMs;
    void this.run();
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.listeners.get(type)?.delete(listener);
  }

  close(): void {
    this.readyState = CLOSED;
    this.abort.abort();
  }

  private dispatch(type: string, event: object): void {
    const handler = (this as unknown as Record<string, unknown>)[`on${type}`];
    if (typeof handler === "function") handler.call(this, event);
    for (const listener of [...(this.listeners.get(type) ?? [])]) (listener as (e: object) => void)(event);
  }

  private error(message: string, status?: number, cause?: unknown): SseErrorEvent {
    const event = new Error(message, { cause }) as SseErrorEvent;
    event.type = "error";
    if (status !== undefined) event.status = status;
    return event;
  }

  private async run(): Promise<void> {
    const doFetch = this.init.fetch ?? fetch;
    let delay = this.retryMs;
    while (this.readyState !== CLOSED) {
      let lost: unknown;
      const attempt = new AbortController();
      try {
        const given = typeof this.init.headers === "function" ? this.init.headers() : this.init.headers;
        const headers: Record<string, string> = {
          ...given,
          accept: "text/event-stream",
          "cache-control": "no-store",
        };
        if (this.lastEventId) headers["last-event-id"] = this.lastEventId;
        const signal = AbortSignal.any([this.abort.signal, attempt.signal]);
        this.arm(attempt);
        const response = await doFetch(this.url, { headers, signal });
        const type = response.headers.get("content-type") ?? "";
        if (response.status !== 200 || !type.startsWith("text/event-stream")) {
          const body = await response.text().catch(() => "");
          this.readyState = CLOSED;
          this.dispatch("error", this.error(refusal(response.status, body), response.status));
          return;
        }
        this.readyState = OPEN;
        delay = this.retryMs;
        this.dispatch("open", { type: "open" });
        if (response.body) await this.read(response.body, attempt);
      } catch (error) {
        lost = error;
      } finally {
        clearTimeout(this.watchdog);
      }
      if (this.readyState === CLOSED) return;
      this.readyState = CONNECTING;
      const silent = attempt.signal.reason instanceof Silence;
      if (silent) lost = attempt.signal.reason;
      const why = lost instanceof Error ? lost.message : "the stream ended";
      const event = this.error(`event stream lost (${why}); reconnecting`, undefined, lost);
      if (silent) event.silent = true;
      this.dispatch("error", event);
      // A stream that carried new events was healthy a moment ago: come back at once, so a flaky link
      // costs a round trip per cut, not a retry delay. One that carried none backs off.
      if (this.progressed) this.progressed = false;
      else {
        await sleep(delay, this.abort.signal);
        delay = Math.min(delay * 2, this.init.maxRetryMs ?? 2000);
      }
    }
  }

  /** (Re)start the silence deadline of this attempt. */
  private arm(attempt: AbortController): void {
    const limit = this.inactivityMs;
    if (!limit) return;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(
      () => attempt.abort(new Silence(`nothing from the hub for ${limit} ms`)),
      limit,
    );
    this.watchdog.unref();
  }

  /** The hub's `connected` event may announce how long its streams can stay silent. */
  private learn(data: string): void {
    try {
      const ms = (JSON.parse(data) as { reconnectAfterInactivityMs?: unknown }).reconnectAfterInactivityMs;
      if (typeof ms === "number" && Number.isFinite(ms)) {
        this.inactivityMs = Math.min(MAX_ANNOUNCED_MS, Math.max(MIN_ANNOUNCED_MS, ms));
      }
    } catch {
      // Not JSON: keep the deadline we have.
    }
  }

  /** Read one stream's events until it ends or fails. */
  private async read(body: ReadableStream<Uint8Array>, attempt: AbortController): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    let data = "";
    let hasData = false;
    let eventType = "";
    // The id of the event being read: it becomes lastEventId only when that event is complete.
    let eventId = this.lastEventId;
    const reader = body.getReader();
    try {
      while (this.readyState !== CLOSED) {
        const { value, done } = await reader.read();
        if (done) return;
        this.arm(attempt);
        buffer += decoder.decode(value, { stream: true });
        let start = 0;
        while (true) {
          const lf = buffer.indexOf("\n", start);
          if (lf === -1) break;
          let line = buffer.slice(start, lf);
          start = lf + 1;
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            // Progress is a new id: a stream that only says `connected` or pings and drops proves nothing.
            if (hasData && eventId !== this.lastEventId) this.progressed = true;
            this.lastEventId = eventId;
            if (eventType === "connected") {
              this.learn(data);
              this.arm(attempt);
            }
            if (hasData) {
              this.dispatch(eventType || "message", {
                type: eventType || "message",
                data,
                lastEventId: this.lastEventId,
              } satisfies SseMessageEvent);
            }
            data = "";
            hasData = false;
            eventType = "";
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          let value = colon === -1 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") {
            data = hasData ? `${data}\n${value}` : value;
            hasData = true;
          } else if (field === "event") eventType = value;
          else if (field === "id" && !value.includes("\0")) eventId = value;
          else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
        }
        buffer = buffer.slice(start);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }
}

function refusal(status: number, body: string): string {
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { error?: { json?: { message?: string }; message?: string } };
    message = parsed.error?.json?.message ?? parsed.error?.message ?? message;
  } catch {
    // not JSON: keep the text
  }
  return `event stream refused with HTTP ${status}${message ? `: ${message}` : ""}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

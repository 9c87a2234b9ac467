/**
 * Subscriptions over SSE, framed exactly as tRPC's SSE producer frames them
 * (a `connected` event first, `data:` + `id:` for tracked events, `ping`,
 * `return` at the end, `serialized-error` for a failure, and the `restore-id`
 * dance after an untracked event on a resumed stream), so tRPC's
 * httpSubscriptionLink and any EventSource read them unchanged. Each event
 * is one write. One timer pings every quiet stream. Once a reader is more
 * than `maxBufferedBytes` behind, its feed holds further events (references
 * to what the backend keeps anyway) until it catches up; a reader that takes
 * nothing for `stallMs` meanwhile is cut, and reconnects with its
 * Last-Event-ID so the backend replays what it missed. So the hub never holds
 * more than about `maxBufferedBytes` plus one event of bytes for a reader.
 */
import { isAbortError, isTrackedEnvelope } from "@trpc/server/unstable-core-do-not-import";
import { type FeedSink, isPushFeed, type Reach } from "../../lib/push-feed.ts";
import type { SseAnswer } from "./trpc-dispatch.ts";

/** The response side of one stream, as a runtime offers it. */
export interface SseTransport {
  /**
   * Queue one chunk (one or two whole events) for the reader. A Uint8Array may be the same object for
   * many streams (one event fanned out): the transport must not change it, and should not copy it.
   */
  write(chunk: string | Uint8Array): void;
  /** Bytes written that the reader has not taken yet. */
  buffered(): number;
  /** End the response after what is written. */
  end(): void;
  /** Drop the connection now, discarding what the reader has not taken. */
  cut(): void;
  /** Call `fn` once the reader has taken what is buffered. */
  onDrain(fn: () => void): void;
}

export interface SseOptions {
  /** Ping a stream after this long without an event (tRPC's sse.ping.intervalMs). */
  pingMs: number;
  /** Hold further events for a stream whose reader is this many bytes behind. */
  maxBufferedBytes: number;
  /** Cut a stream whose reader has taken nothing for this long while behind (default: pingMs). */
  stallMs?: number;
  /** The event data text of a value (the router's output transformer, then JSON). */
  json(value: unknown): string;
}

export const SSE_HEADERS: Record<string, string> = {
  vary: "trpc-accept, accept",
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
  connection: "keep-alive",
};

/** Bytes (text and encoded frame together) of recent frames kept for sharing by content. */
const FRAME_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * How long a reader should wait, with nothing arriving, before it takes the
 * stream for dead: two and a half ping intervals (a ping is never more than
 * one interval late from a live hub, and a busy one gets some slack).
 */
export function silenceDeadlineMs(pingMs: number): number {
  return Math.ceil(pingMs * 2.5);
}

// tRPC ends each event with "\n" after its last field and then "\n\n".
const PING = "event: ping\ndata: \n\n\n";
const RETURN = "event: return\ndata: \n\n\n";

/** Every open stream of one server: the shared ping timer and the counters. */
export class SseStreams {
  readonly options: SseOptions;
  private readonly open = new Set<SseStream>();
  private timer: NodeJS.Timeout | undefined;
  /** Streams cut because their reader fell behind (for logs and tests). */
  cuts = 0;
  /**
   * Each event's frame, built once: a broadcast (peers changes), or a message
   * to an agent with several streams, hands the same event object to each of
   * those streams (not necessarily one right after the other: each stream's
   * feed waits for the store on its own), so it is serialized and encoded once
   * and every stream writes the same bytes. Bytes, not a string: a socket that
   * cannot take a string at once copies it into memory of its own, per stream,
   * while a buffer is only referenced, so thousands of stalled streams of one
   * agent hold one copy of each event, not one each. Weak: a frame lives as
   * long as its event does (or a socket still holds it).
   */
  private readonly frames = new WeakMap<object, { id: string; frame: Uint8Array }>();
  /**
   * The same by content, for what the WeakMap cannot see: a resumed or new
   * stream replays its backlog as objects of its own. Backlog events only: a
   * live one would pay for hashing its text and gain nothing. The latest frames up to
   * FRAME_CACHE_BYTES, so many streams replaying the same backlog share them;
   * emptied at every ping tick.
   */
  private readonly byText = new Map<string, Uint8Array>();
  private byTextBytes = 0;

  /**
   * The first event of every stream. Like tRPC's, it carries the reader's
   * inactivity deadline, so clients (tRPC's link and the hub client) leave a
   * silent stream, such as one relayed from a hung hub, after that long.
   */
  readonly connected: string;

  constructor(options: SseOptions) {
    this.options = options;
    const pinging = Number.isFinite(options.pingMs) && options.pingMs > 0;
    const client = pinging ? { reconnectAfterInactivityMs: silenceDeadlineMs(options.pingMs) } : {};
    this.connected = `event: connected\ndata: ${JSON.stringify(client)}\n\n\n`;
  }

  get size(): number {
    return this.open.size;
  }

  /** Start streaming `answer` into `transport`; returns the hook the runtime calls when the client goes. */
  start(transport: SseTransport, answer: SseAnswer): () => void {
    const stream = new SseStream(this, transport, answer);
    this.open.add(stream);
    if (!this.timer && Number.isFinite(this.options.pingMs) && this.options.pingMs > 0) {
      // Ticking at half the interval and pinging after two quiet ticks keeps every gap within one interval.
      this.timer = setInterval(() => this.ping(), this.options.pingMs / 2);
      this.timer.unref();
    }
    stream.begin();
    return () => stream.close();
  }

  /**
   * A tracked event's frame. "one" (no other stream gets it): the text, nothing to share or cache.
   * "backlog": also shared by text (see byText); a live event is shared by its object alone.
   */
  trackedFrame(id: string, data: unknown, reach: Reach | undefined): string | Uint8Array {
    const key = reach !== "one" && typeof data === "object" && data !== null ? data : undefined;
    const cached = key && this.frames.get(key);
    if (cached && cached.id === id) return cached.frame;
    const text = `data: ${this.options.json(data)}\nid: ${id}\n\n\n`;
    if (reach === "one") return text;
    let frame = reach === "backlog" ? this.byText.get(text) : Buffer.from(text);
    if (!frame) {
      frame = Buffer.from(text);
      this.byText.set(text, frame);
      this.byTextBytes += frame.length * 2;
      for (const [old, bytes] of this.byText) {
        if (this.byTextBytes <= FRAME_CACHE_BYTES) break;
        this.byText.delete(old);
        this.byTextBytes -= bytes.length * 2;
      }
    }
    if (key) this.frames.set(key, { id, frame });
    return frame;
  }

  forget(stream: SseStream): void {
    this.open.delete(stream);
    if (this.open.size === 0) {
      this.byText.clear();
      this.byTextBytes = 0;
    }
    if (this.open.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** End every stream (server shutting down). */
  closeAll(): void {
    for (const stream of [...this.open]) stream.close();
  }

  private ping(): void {
    // Replays that share frames come in bursts (reconnects after a cut or a restart); an idle hub keeps none.
    this.byText.clear();
    this.byTextBytes = 0;
    for (const stream of this.open) stream.pingIfQuiet();
  }
}

class SseStream implements FeedSink<unknown> {
  private readonly streams: SseStreams;
  private readonly transport: SseTransport;
  private readonly answer: SseAnswer;
  private lastEventId: string | null;
  /** Ping ticks since the last write. */
  private quietTicks = 0;
  private closed = false;
  private iterator: AsyncIterator<unknown> | undefined;
  /** Over the limit: waiting for the reader to catch up. */
  private behind = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private caughtUp: (() => void) | undefined;

  constructor(streams: SseStreams, transport: SseTransport, answer: SseAnswer) {
    this.streams = streams;
    this.transport = transport;
    this.answer = answer;
    const id = answer.lastEventId;
    // An id with these characters cannot be sent back in an `id:` field.
    this.lastEventId = id && !/[\0\n\r]/.test(id) ? id : null;
  }

  begin(): void {
    const { source, failure } = this.answer;
    if (failure !== undefined) {
      this.send(`${this.streams.connected}event: serialized-error\ndata: ${failure}\n\n\n`);
      this.finish();
      return;
    }
    this.send(this.streams.connected);
    if (isPushFeed(source)) source.attach(this);
    else void this.iterate(source as AsyncIterable<unknown>);
  }

  /** One value from the procedure; false while the reader is behind (the feed then holds the next ones). */
  next(value: unknown, reach?: Reach): boolean {
    if (this.closed) return false;
    const json = this.streams.options.json;
    if (isTrackedEnvelope(value)) {
      const id = value[0] as string;
      this.lastEventId = id;
      this.send(this.streams.trackedFrame(id, value[1], reach));
    } else if (this.lastEventId === null) {
      this.send(`data: ${json(value)}\n\n\n`);
    } else {
      // An EventSource gives an id-less event the last id it saw: clear it for this event, then restore it.
      this.send(`data: ${json(value)}\nid: \n\n\nevent: restore-id\ndata: \nid: ${this.lastEventId}\n\n\n`);
    }
    return !this.behind;
  }

  /** The procedure's stream ended. */
  end(): void {
    if (this.closed) return;
    this.send(RETURN);
    this.finish();
  }

  pingIfQuiet(): void {
    if (++this.quietTicks >= 2 && !this.behind) this.send(PING);
  }

  /** The client went away or the server is closing. */
  close(): void {
    this.stop(false);
  }

  private send(chunk: string | Uint8Array): void {
    if (this.closed) return;
    this.quietTicks = 0;
    this.transport.write(chunk);
    if (!this.behind && this.transport.buffered() > this.streams.options.maxBufferedBytes) this.fallBehind();
  }

  private fallBehind(): void {
    this.behind = true;
    const options = this.streams.options;
    this.stallTimer = setTimeout(() => {
      // Took nothing for a whole stall period: drop it rather than hold on; it resumes from the last id it read.
      this.streams.cuts++;
      this.stop(true);
    }, options.stallMs ?? options.pingMs);
    this.stallTimer.unref();
    this.transport.onDrain(() => {
      if (this.closed) return;
      clearTimeout(this.stallTimer);
      this.behind = false;
      const source = this.answer.source;
      if (isPushFeed(source)) source.resume();
      const caughtUp = this.caughtUp;
      this.caughtUp = undefined;
      caughtUp?.();
    });
  }

  /** The stream is over on our side: the procedure ended or failed. */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.stallTimer);
    this.streams.forget(this);
    this.answer.abort.abort();
    this.transport.end();
  }

  private stop(cut: boolean): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.stallTimer);
    this.streams.forget(this);
    const source = this.answer.source;
    if (isPushFeed(source)) source.detach();
    void this.iterator?.return?.()?.catch(() => {});
    this.answer.abort.abort();
    if (cut) this.transport.cut();
    else this.transport.end();
  }

  private async iterate(source: AsyncIterable<unknown>): Promise<void> {
    const iterator = source[Symbol.asyncIterator]();
    this.iterator = iterator;
    try {
      while (!this.closed) {
        const result = await iterator.next();
        if (result.done) break;
        if (!this.next(result.value) && !this.closed) {
          await new Promise<void>((resolve) => {
            this.caughtUp = resolve;
          });
        }
      }
      this.end();
    } catch (cause) {
      if (this.closed) return;
      if (!isAbortError(cause))
        this.send(`event: serialized-error\ndata: ${this.answer.formatError(cause)}\n\n\n`);
      this.finish();
    }
  }
}

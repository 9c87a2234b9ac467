/**
 * The client's inbox stream read straight off the SSE frames: the same
 * request and wire format as tRPC's httpSubscriptionLink (GET
 * messages.inbox, `connected`/ping/`return`/`serialized-error` events, `id:`
 * resumed by Last-Event-ID), without the link's per-event web-stream,
 * generator and observable pipeline, which cost more CPU per delivered
 * message than everything else the client does.
 */
import type { InboxEvent } from "../../contract/schemas.ts";
import { deserializeAnswer } from "../../lib/wire-transformer.ts";
import { FetchEventSource, type SseMessageEvent } from "./event-source.ts";

export interface InboxStreamOptions {
  /** The procedure URL without input (…/trpc/messages.inbox). */
  url: string;
  headers: () => Record<string, string>;
  lastEventId: string | null;
  /** Take peers changes on this stream (default true); a client nobody asked for presence says false. */
  peers?: boolean;
  fetch: typeof fetch;
  inactivityMs: number;
  onEvent(id: string, event: InboxEvent): void;
  /** The hub has taken the subscription (its `connected` event). */
  onConnected?(): void;
  /** The stream dropped and the attempt to open it again failed too (it keeps trying). */
  onLost?(reason: string): void;
  /** Nothing came from the hub within the stream's deadline: the hub (or the path to it) is hung. */
  onSilent?(reason: string): void;
  /** The stream is over for good: refused (401…), failed inside the procedure, or ended by the hub. */
  onEnd(): void;
}

export interface InboxStream {
  unsubscribe(): void;
}

export function openInbox(opts: InboxStreamOptions): InboxStream {
  const wanted =
    opts.peers === false
      ? { lastEventId: opts.lastEventId, peers: false }
      : { lastEventId: opts.lastEventId };
  const input = encodeURIComponent(JSON.stringify({ json: wanted }));
  const source = new FetchEventSource(`${opts.url}?input=${input}`, {
    headers: opts.headers,
    inactivityMs: opts.inactivityMs,
    fetch: opts.fetch,
  });
  let over = false;
  const end = () => {
    if (over) return;
    over = true;
    source.close();
    opts.onEnd();
  };
  source.addEventListener("message", (event: SseMessageEvent) => {
    if (over) return;
    let data: InboxEvent;
    try {
      data = deserializeAnswer(JSON.parse(event.data)) as InboxEvent;
    } catch {
      end();
      return;
    }
    opts.onEvent(event.lastEventId, data);
  });
  source.addEventListener("connected", () => opts.onConnected?.());
  source.addEventListener("serialized-error", end);
  source.addEventListener("return", end);
  // A single drop (a cut, a restart of a proxy) is not news; a reconnect that fails too is.
  let opened = true;
  source.addEventListener("open", () => {
    opened = true;
  });
  source.addEventListener("error", (error: { message?: string; silent?: boolean }) => {
    // A dropped stream reconnects by itself; only a refusal closes it.
    if (source.readyState === FetchEventSource.CLOSED) end();
    else if (error.silent && !over) opts.onSilent?.(error.message ?? "the event stream went silent");
    else if (!opened && !over) opts.onLost?.(error.message ?? "the event stream cannot reconnect");
    opened = false;
  });
  return {
    unsubscribe() {
      over = true;
      source.close();
    },
  };
}

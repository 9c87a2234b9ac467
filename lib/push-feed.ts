/**
 * A subscription source that a server can consume two ways: iterate it (any
 * tRPC adapter, the socket transport) or attach one sink to it and be called
 * for each value (the hub's SSE writer). Attaching costs no promise, no
 * generator frame and no queue per event, which is what a thousand idle
 * streams and every delivered message pay for on the iterating path.
 */

/**
 * Who else may be handed a value, for a consumer that would share its work
 * on it: "one" (this consumer alone: nothing to share), "backlog" (it was
 * waiting when the feed opened, a replay: other consumers may be handed an
 * equal value of their own). Unsaid: other consumers may be handed the same
 * object.
 */
export type Reach = "one" | "backlog";

export interface FeedSink<T> {
  /** One value; `false` asks the feed to hold further values until `resume()` (the reader is behind). */
  next(value: T, reach?: Reach): boolean | undefined;
  /** The source has ended (hub shutting down, agent removed): nothing follows. */
  end(): void;
}

export interface PushFeed<T> extends AsyncIterable<T> {
  /** Start delivering to `sink` (once; a feed has one consumer). */
  attach(sink: FeedSink<T>): void;
  /** The consumer has gone: stop and release what the feed holds. */
  detach(): void;
  /** Deliver again after a `next()` that returned false. */
  resume(): void;
}

export function isPushFeed(value: unknown): value is PushFeed<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { attach?: unknown }).attach === "function" &&
    typeof (value as { detach?: unknown }).detach === "function"
  );
}

/**
 * The iterating view of a push feed: values buffered until asked for;
 * leaving the loop (return) detaches.
 */
export function iterateFeed<T>(feed: PushFeed<T>): AsyncIterator<T> {
  const buffered: T[] = [];
  let waiter: ((result: IteratorResult<T>) => void) | null = null;
  let ended = false;
  feed.attach({
    next(value) {
      if (waiter) {
        const resolve = waiter;
        waiter = null;
        resolve({ value, done: false });
      } else buffered.push(value);
      return true;
    },
    end() {
      ended = true;
      if (waiter) {
        const resolve = waiter;
        waiter = null;
        resolve({ value: undefined, done: true });
      }
    },
  });
  return {
    next() {
      if (buffered.length > 0) return Promise.resolve({ value: buffered.shift() as T, done: false });
      if (ended) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        waiter = resolve;
      });
    },
    return() {
      ended = true;
      buffered.length = 0;
      feed.detach();
      return Promise.resolve({ value: undefined, done: true });
    },
  };
}

/** The same feed with each value passed through `map` (still attachable). */
export function mapFeed<A, B>(feed: PushFeed<A>, map: (value: A) => B): PushFeed<B> {
  const mapped: PushFeed<B> = {
    attach(sink) {
      feed.attach({ next: (value, reach) => sink.next(map(value), reach), end: () => sink.end() });
    },
    detach: () => feed.detach(),
    resume: () => feed.resume(),
    [Symbol.asyncIterator]: () => iterateFeed(mapped),
  };
  return mapped;
}

/**
 * The hub's store with its flushes timed, so the metrics show how long a send,
 * ack or settle waits for durability, without the store or the backend
 * knowing about metrics. One observation per flush (the time from its first
 * waiter to the commit), however many requests wait on that flush together.
 */
import type { HubStore } from "../store/store.ts";

export function timedStore(store: HubStore, observe: (ms: number) => void): HubStore {
  const untimed = store.flush.bind(store);
  let last: Promise<void> | undefined;
  let timed: Promise<void> = Promise.resolve();
  // The store's own flush, shadowed on the instance: every other call goes straight to the store.
  store.flush = (): Promise<void> => {
    const flushing = untimed();
    if (flushing === last) return timed;
    last = flushing;
    const started = performance.now();
    timed = flushing.then(
      () => observe(performance.now() - started),
      (error: unknown) => {
        observe(performance.now() - started);
        throw error;
      },
    );
    return timed;
  };
  return store;
}

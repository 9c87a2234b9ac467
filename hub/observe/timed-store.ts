/**
 * The hub's store with its flushes timed, so the metrics show how long a send,
 * ack or settle waits for durability, without the store or the backend
 * knowing about metrics.
 */
import type { HubStore } from "../store/store.ts";

export function timedStore(store: HubStore, observe: (ms: number) => void): HubStore {
  const flush = async () => {
    const started = performance.now();
    try {
      await store.flush();
    } finally {
      observe(performance.now() - started);
    }
  };
  // Bound once: the backend calls these several times per request.
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "flush") return flush;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      let fn = bound.get(prop);
      if (fn === undefined) {
        fn = value.bind(target);
        bound.set(prop, fn);
      }
      return fn;
    },
  });
}

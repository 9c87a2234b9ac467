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
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "flush") return flush;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

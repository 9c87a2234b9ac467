/**
 * The typed client a node uses for one peer. Queries and mutations go
 * straight to the channel, one promise per call; tRPC's own client would run
 * each through a proxy per property access, a link chain, an observable and
 * a share() (profiled: about a fifth of a P2P send's round trip). So do
 * subscriptions given callbacks (the node's outcome streams and watches);
 * one used as an async iterable keeps tRPC's client. Results and errors are
 * the same either way: the channel already decodes answers and builds
 * TRPCClientErrors, and its stop frame is what an unsubscribe sends.
 */
import { createTRPCClient, getUntypedClient, type TRPCClient } from "@trpc/client";
import { type ComsRouter, comsRouter } from "../contract/router.ts";
import { type IpcChannel, ipcLink } from "./link.ts";

interface CallOptions {
  signal?: AbortSignal | null;
}

/** The callbacks tRPC's client takes for a subscription (its `ipcLink` never reports "stopped"). */
interface SubscribeOptions extends CallOptions {
  onStarted?: (opts: { context: undefined }) => void;
  onData?: (value: unknown) => void;
  onError?: (error: unknown) => void;
  onComplete?: () => void;
  onStopped?: () => void;
}

const CALLBACKS = ["onStarted", "onData", "onError", "onComplete", "onStopped"] as const;

export function ipcClient(channel: IpcChannel): TRPCClient<ComsRouter> {
  const trpc = createTRPCClient<ComsRouter>({ links: [ipcLink(channel)] });
  const call =
    (type: "query" | "mutation", path: string) =>
    (input?: unknown, opts?: CallOptions): Promise<unknown> =>
      new Promise((resolve, reject) => {
        channel.call(type, path, input, { data: resolve, error: reject }, opts?.signal);
      });
  const root: Record<string | symbol, unknown> = Object.create(null);
  for (const path of Object.keys(comsRouter._def.procedures)) {
    const names = path.split(".");
    const last = names.pop() as string;
    let node = root;
    let subscriptionSide = trpc as unknown as Record<string, unknown>;
    for (const name of names) {
      node[name] ??= Object.create(null);
      node = node[name] as Record<string, unknown>;
      subscriptionSide = subscriptionSide[name] as Record<string, unknown>;
    }
    const viaTrpc = subscriptionSide[last] as { subscribe: (input: unknown, opts: unknown) => unknown };
    node[last] = {
      query: call("query", path),
      mutate: call("mutation", path),
      subscribe: (input: unknown, opts: SubscribeOptions = {}) => {
        if (!CALLBACKS.some((key) => typeof opts[key] === "function")) return viaTrpc.subscribe(input, opts);
        const cancel = channel.call(
          "subscription",
          path,
          input,
          {
            data: (value) => opts.onData?.(value),
            error: (error) => opts.onError?.(error),
            started: () => opts.onStarted?.({ context: undefined }),
            stopped: () => opts.onComplete?.(),
          },
          opts.signal,
        );
        return { unsubscribe: cancel };
      },
    };
  }
  // tRPC's getUntypedClient() reads the untyped client under this registered symbol.
  root[Symbol.for("trpc_untypedClient")] = getUntypedClient(trpc);
  return root as unknown as TRPCClient<ComsRouter>;
}

/**
 * The typed client a node uses for one peer. Queries and mutations go
 * straight to the channel, one promise per call; tRPC's own client would run
 * each through a proxy per property access, a link chain, an observable and
 * a share() (profiled: about a fifth of a P2P send's round trip).
 * Subscriptions keep tRPC's client, with its callbacks and async iteration.
 * Results and errors are the same either way: the channel already decodes
 * answers and builds TRPCClientErrors.
 */
import { createTRPCClient, type TRPCClient } from "@trpc/client";
import { type ComsRouter, comsRouter } from "../contract/router.ts";
import { type IpcChannel, ipcLink } from "./link.ts";

interface CallOptions {
  signal?: AbortSignal | null;
}

export function ipcClient(channel: IpcChannel): TRPCClient<ComsRouter> {
  const trpc = createTRPCClient<ComsRouter>({ links: [ipcLink(channel)] });
  const call =
    (type: "query" | "mutation", path: string) =>
    (input?: unknown, opts?: CallOptions): Promise<unknown> =>
      new Promise((resolve, reject) => {
        channel.call(type, path, input, { data: resolve, error: reject }, opts?.signal);
      });
  const root: Record<string, unknown> = Object.create(null);
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
    const viaTrpc = subscriptionSide[last] as { subscribe: unknown };
    node[last] = {
      query: call("query", path),
      mutate: call("mutation", path),
      subscribe: (input: unknown, opts: unknown) =>
        (viaTrpc.subscribe as (input: unknown, opts: unknown) => unknown)(input, opts),
    };
  }
  return root as unknown as TRPCClient<ComsRouter>;
}

/**
 * The typed tRPC client a HubClient calls through: calls made while another
 * is in flight go batched (throughput), a lone call goes at once (latency),
 * subscriptions ride SSE; every call has a deadline, and every answer or
 * failure to reach the hub is reported (the connection state feeds on it).
 */
import {
  createTRPCClient,
  httpBatchLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  type TRPCClient,
  TRPCClientError,
  type TRPCLink,
} from "@trpc/client";
import { observable } from "@trpc/server/observable";
import type { ComsRouter } from "../../contract/router.ts";
import { clientWireTransformer as wireTransformer } from "../../lib/wire-transformer.ts";
import { TRPC_PATH } from "../http/routes.ts";
import { isUnreachable } from "./connection.ts";
import { FetchEventSource } from "./event-source.ts";

const REQUEST_TIMEOUT_MS = 15_000;
/** Links get a fixed placeholder URL; the fetch points it at the hub's current URL. */
export const PLACEHOLDER = "http://pi-coms-hub.invalid";

export interface HubLinkOptions {
  /** The hub's base URL now (it may move: discovery, restart elsewhere). */
  url(): string;
  headers(): Record<string, string>;
  /** The hub answered (a result, or an error it sent). */
  onAnswer(): void;
  /** The hub could not be reached for a call. */
  onUnreachable(error: unknown): void;
  /** Aborted when the client leaves a hub it takes for hung: calls still waiting on it fail and are retried elsewhere. */
  leaving?(): AbortSignal;
}

/** `fetch` aimed at the hub's current URL. */
export function hubFetcher(url: () => string, timed: boolean, leaving?: () => AbortSignal) {
  return (input: RequestInfo | URL, init?: RequestInit) => {
    const target = String(input).replace(PLACEHOLDER, url());
    return timed ? timedFetch(target, init, leaving?.()) : fetch(target, init);
  };
}

export function hubTrpcClient(opts: HubLinkOptions): TRPCClient<ComsRouter> {
  const endpoint = `${PLACEHOLDER}${TRPC_PATH}`;
  const headers = () => opts.headers();
  const hubFetch = hubFetcher(opts.url, true, opts.leaving);
  let inflight = 0;
  const report = (error: unknown) => {
    if (error instanceof TRPCClientError && !isUnreachable(error)) opts.onAnswer();
    else if (isUnreachable(error)) opts.onUnreachable(error);
  };
  const batching: TRPCLink<ComsRouter> =
    () =>
    ({ op, next }) => {
      if (op.type === "subscription") return next(op);
      return observable((observer) => {
        const batch = inflight > 0;
        inflight++;
        let done = false;
        const finish = () => {
          if (!done) inflight--;
          done = true;
        };
        const sub = next({ ...op, context: { ...op.context, batch } }).subscribe({
          next: (value) => {
            opts.onAnswer();
            observer.next(value);
          },
          error: (error) => {
            finish();
            report(error);
            observer.error(error);
          },
          complete: () => {
            finish();
            observer.complete();
          },
        });
        return () => {
          finish();
          sub.unsubscribe();
        };
      });
    };
  return createTRPCClient<ComsRouter>({
    links: [
      batching,
      splitLink({
        condition: (op) => op.type === "subscription",
        true: httpSubscriptionLink({
          url: endpoint,
          transformer: wireTransformer,
          EventSource: FetchEventSource,
          eventSourceOptions: () => ({
            headers,
            // The hub pings every 15 s: silence for longer means a dead link, so reconnect and resume.
            inactivityMs: 40_000,
            fetch: hubFetcher(opts.url, false),
          }),
        }),
        false: splitLink({
          condition: (op) => op.context.batch === true,
          true: httpBatchLink({
            url: endpoint,
            transformer: wireTransformer,
            maxItems: 50,
            headers,
            fetch: hubFetch,
          }),
          false: httpLink({ url: endpoint, transformer: wireTransformer, headers, fetch: hubFetch }),
        }),
      }),
    ],
  });
}

/** Every call has a deadline: a hub that stops answering must not hang a caller. */
/** One shared reason: the timer also fires for calls long done, and need not build an error each time. */
const TIMED_OUT = new DOMException("the hub did not answer in time", "TimeoutError");

function timedFetch(input: RequestInfo | URL, init?: RequestInit, leaving?: AbortSignal): Promise<Response> {
  // One controller and one timer (left to run: it also bounds reading the body), instead of AbortSignal.any.
  const controller = new AbortController();
  setTimeout(() => controller.abort(TIMED_OUT), REQUEST_TIMEOUT_MS).unref();
  const outer = init?.signal;
  if (outer) {
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener("abort", () => controller.abort(outer.reason), { once: true });
  }
  const answered = fetch(input, { ...init, signal: controller.signal });
  if (!leaving) return answered;
  // Only until the answer starts: a hung hub never starts one, a live one is left to finish.
  const leave = () => controller.abort(leaving.reason);
  leaving.addEventListener("abort", leave, { once: true });
  const done = () => leaving.removeEventListener("abort", leave);
  answered.then(done, done);
  return answered;
}

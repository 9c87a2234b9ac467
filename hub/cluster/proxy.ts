/**
 * The public side of a clustered hub: every request is passed on, streamed
 * both ways without buffering (SSE included), to the hub that holds the
 * project lease, which may be this process's own backend listener. With no
 * holder known (failing over, Redis down) it answers with the UNAVAILABLE
 * code in tRPC's error shape: a send is refused at once and says why, and a
 * client's stream recovery keeps retrying until a hub is active again.
 * When the holder changes, whatever is still relayed to the old one (a hung
 * holder keeps its streams open and silent) is cut, so those clients resume
 * on the new holder at once.
 */
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type RequestListener,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { TRPCError } from "@trpc/server";
import { ComsError, comsError } from "../../contract/errors.ts";
import { comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { splitTarget } from "../http/front-door.ts";
import { HEALTH_PATH } from "../http/routes.ts";
import { errorItem } from "../http/trpc-errors.ts";

const router = servedRouter(comsRouter);
/** Connection-level headers are per hop, never forwarded. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
];

export interface ProxyTarget {
  /** The holder's base URL, or undefined while there is none. */
  current(): string | undefined;
  /** The holder could not be reached: look it up again. */
  suspect(url: string): void;
  /** Redis answers (no holder then means: failing over, soon back). */
  storeReachable(): boolean;
  /** How long a request waits for a holder to appear before it is refused. */
  holdMs: number;
}

function forwardable(headers: IncomingHttpHeaders, drop: string[] = []): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.includes(name) && !drop.includes(name)) out[name] = value;
  }
  return out;
}

/**
 * UNAVAILABLE in the shape tRPC clients read (one item per call of a batch).
 * Transient (failing over): HTTP 503, which clients treat like a hub they
 * cannot reach, so they wait and retry. Final (Redis down): 500, so a send is
 * refused at once with this message instead of hanging in retries.
 */
export function unavailableBody(reqUrl: string, why: string, transient: boolean): string {
  const { path, query } = splitTarget(reqUrl);
  const procedure = path.replace(/^\/trpc\/?/, "");
  const error = transient
    ? new TRPCError({ code: "SERVICE_UNAVAILABLE", message: why, cause: new ComsError("UNAVAILABLE", why) })
    : comsError("UNAVAILABLE", why);
  const call = { error, type: "unknown" as const, input: undefined, ctx: undefined };
  if (query?.get("batch") === "1") {
    const items = procedure.split(",").map((p) => errorItem(router, { ...call, path: p }).json);
    return `[${items.join(",")}]`;
  }
  return errorItem(router, { ...call, path: procedure || undefined }).json;
}

export type ProxyHandler = RequestListener & {
  /** Cut every request and stream still relayed to `base` (a holder that lost the lease). */
  cutFrom(base: string): void;
};

export function proxyHandler(target: ProxyTarget): ProxyHandler {
  // No socket cap: every forwarded inbox stream holds one upstream connection for as long as it is open.
  const httpAgent = new HttpAgent({ keepAlive: true });
  const httpsAgent = new HttpsAgent({ keepAlive: true });
  const relayed = new Map<string, Set<ClientRequest>>();
  const refuse = (res: Parameters<RequestListener>[1], reqUrl: string, why: string) => {
    if (res.headersSent) return void res.destroy();
    // Only a send is refused for good while Redis is down; everything else waits like for a restart.
    const transient = target.storeReachable() || !reqUrl.includes("messages.send");
    const body = unavailableBody(reqUrl, why, transient);
    res.writeHead(transient ? 503 : 500, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "retry-after": "1",
    });
    res.end(body);
  };
  const forward: RequestListener = (req, res) => {
    const base = target.current();
    const reqUrl = req.url ?? "/";
    if (!base) {
      req.resume();
      const why = target.storeReachable()
        ? "no hub of this project is active right now (failing over); retry"
        : "the hubs of this project cannot reach Redis (Redis is down); nothing was stored, retry later";
      return refuse(res, reqUrl, why);
    }
    const to = new URL(base);
    const secure = to.protocol === "https:";
    const upstream = (secure ? httpsRequest : httpRequest)({
      protocol: to.protocol,
      hostname: to.hostname.replace(/^\[|\]$/g, ""),
      port: to.port,
      method: req.method,
      path: reqUrl,
      headers: { ...forwardable(req.headers, ["host"]), host: to.host },
      agent: secure ? httpsAgent : httpAgent,
    });
    upstream.setNoDelay(true);
    const open = relayed.get(base) ?? new Set<ClientRequest>();
    relayed.set(base, open);
    open.add(upstream);
    upstream.once("close", () => {
      open.delete(upstream);
      if (open.size === 0 && relayed.get(base) === open) relayed.delete(base);
    });
    let answered = false;
    upstream.on("response", (up) => {
      answered = true;
      const headers = forwardable(up.headers);
      res.writeHead(up.statusCode ?? 502, headers);
      // An event stream must reach the client as it is written, not when a buffer fills.
      res.flushHeaders();
      res.socket?.setNoDelay(true);
      up.pipe(res);
      // The holder died mid-stream: cut the client too, so it reconnects and resumes by event id.
      up.on("aborted", () => res.destroy());
      up.on("error", () => res.destroy());
      upstream.once("close", () => {
        if (!up.complete) res.destroy();
      });
      res.on("close", () => {
        if (!up.complete) upstream.destroy();
      });
    });
    upstream.on("error", (error: NodeJS.ErrnoException) => {
      // Only a failure to reach it says the holder may be gone; a cancelled stream says nothing.
      if (!answered && /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET/.test(error.code ?? "")) {
        target.suspect(base);
      }
      if (answered) return void res.destroy();
      req.resume();
      refuse(res, reqUrl, `the active hub of this project did not answer (${error.message}); retry`);
    });
    req.pipe(upstream);
  };
  const handler: RequestListener = (req, res) => {
    // A health check is answered at once (503 while failing over): a client picking a hub to move to must
    // tell a live hub from a hung one quickly.
    if (target.current() !== undefined || req.url === HEALTH_PATH) return forward(req, res);
    // A failover takes a moment: hold the request briefly rather than refuse it at once.
    req.pause();
    const until = Date.now() + target.holdMs;
    const wait = () => {
      if (target.current() !== undefined || Date.now() >= until || req.destroyed) forward(req, res);
      else setTimeout(wait, 25);
    };
    wait();
  };
  return Object.assign(handler, {
    cutFrom(base: string) {
      const open = relayed.get(base);
      relayed.delete(base);
      // The client side goes with each (its response is destroyed on the upstream's error), and reconnects.
      for (const upstream of open ?? []) upstream.destroy(new Error("the active hub changed"));
    },
  });
}

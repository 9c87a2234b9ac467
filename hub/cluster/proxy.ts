/**
 * The public side of a clustered hub: every request is passed on, streamed
 * both ways without buffering (SSE included), to the hub that holds the
 * project lease, which may be this process's own backend listener. With no
 * holder known (failing over, Redis down) it answers 503 with the
 * UNAVAILABLE code in tRPC's error shape, which clients treat like an
 * unreachable hub: they retry, and a send that still fails says why.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type RequestListener,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { comsError } from "../../contract/errors.ts";
import { comsRouter } from "../../contract/router.ts";
import { servedRouter } from "../../lib/served-router.ts";
import { splitTarget } from "../http/front-door.ts";
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
}

function forwardable(headers: IncomingHttpHeaders, drop: string[] = []): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.includes(name) && !drop.includes(name)) out[name] = value;
  }
  return out;
}

/** 503 UNAVAILABLE in the shape tRPC clients read (one item per call of a batch). */
export function unavailableBody(reqUrl: string, why: string): string {
  const { path, query } = splitTarget(reqUrl);
  const procedure = path.replace(/^\/trpc\/?/, "");
  const call = {
    error: comsError("UNAVAILABLE", why),
    type: "unknown" as const,
    input: undefined,
    ctx: undefined,
  };
  if (query?.get("batch") === "1") {
    const items = procedure.split(",").map((p) => errorItem(router, { ...call, path: p }).json);
    return `[${items.join(",")}]`;
  }
  return errorItem(router, { ...call, path: procedure || undefined }).json;
}

export function proxyHandler(target: ProxyTarget): RequestListener {
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256 });
  const refuse = (res: Parameters<RequestListener>[1], reqUrl: string, why: string) => {
    if (res.headersSent) return void res.destroy();
    const body = unavailableBody(reqUrl, why);
    res.writeHead(503, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "retry-after": "1",
    });
    res.end(body);
  };
  return (req, res) => {
    const base = target.current();
    const reqUrl = req.url ?? "/";
    if (!base) {
      req.resume();
      return refuse(
        res,
        reqUrl,
        "no hub of this project is active right now (failing over, or Redis is down); retry",
      );
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
      res.on("close", () => {
        if (!up.complete) upstream.destroy();
      });
    });
    upstream.on("error", (error) => {
      target.suspect(base);
      if (answered) return void res.destroy();
      req.resume();
      refuse(res, reqUrl, `the active hub of this project did not answer (${error.message}); retry`);
    });
    req.pipe(upstream);
  };
}

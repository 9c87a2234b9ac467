/**
 * One request to the hub, as the front door and dispatch read it, and its
 * answer as it goes out: `H1Call` for the plain ones read straight off the
 * connection (h1-connection.ts, on Node and on Bun), `NodeCall` for those
 * node:http parsed on a Node hub (anything unusual, and connections handed
 * over). Both answer the same three ways: a tRPC answer, a route's answer,
 * or an event stream.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ComsContext } from "../../contract/router.ts";
import { splitTarget } from "./front-door.ts";
import type { H1Connection, H1Stream } from "./h1-connection.ts";
import { headerOf, type RequestHead } from "./h1-head.ts";
import { socketStream } from "./node-h1.ts";
import type { RouteAnswer, RouteRequest } from "./routes.ts";
import { SSE_HEADERS, type SseStreams } from "./sse-writer.ts";
import type { SseAnswer, TrpcAnswer, TrpcRequest } from "./trpc-dispatch.ts";

const NODE_SSE_HEADERS = { ...SSE_HEADERS, connection: "close" };
const { connection: _keepAlive, ...SSE_HEAD } = SSE_HEADERS;
const SSE_HEAD_LINES = headerLines(SSE_HEAD);
const JSON_HEAD_LINES = "vary: trpc-accept, accept\r\ncontent-type: application/json\r\n";

function headerLines(headers: Record<string, string>): string {
  let text = "";
  for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
  return text;
}

/**
 * A header's value (`name` in lower case) read from node's raw list (name,
 * value, name, value…) instead of `req.headers`, which builds an object of
 * every header on first use. A header sent more than once is left to
 * `req.headers`, so repeated headers are joined or dropped exactly as node does.
 */
function rawHeader(req: IncomingMessage, name: string): string | undefined {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i] as string;
    if (key.length !== name.length || key.toLowerCase() !== name) continue;
    if (value !== undefined) {
      const joined = req.headers[name];
      return Array.isArray(joined) ? joined[0] : joined;
    }
    value = raw[i + 1];
  }
  return value;
}

/** Stream `answer`'s events into `stream`, one write each. No stream: the client is gone. */
function streamInto(streams: SseStreams, stream: H1Stream | null, answer: SseAnswer): void {
  if (!stream) answer.abort.abort();
  else stream.onClose(streams.start(stream, answer));
}

export abstract class HubCall implements RouteRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams | null;
  ctx: ComsContext | undefined;
  procedurePath = "";
  body = "";
  protected readonly streams: SseStreams;

  constructor(method: string, target: string, streams: SseStreams) {
    this.method = method;
    const { path, query } = splitTarget(target);
    this.path = path;
    this.query = query;
    this.streams = streams;
  }

  /** The client's address (read only when a wrong token has to be counted against it). */
  abstract readonly remote: () => string | undefined;

  /** Handed around unbound (auth, dispatch), hence a property. */
  abstract readonly header: (name: string) => string | undefined;
  /** The declared body size (0 without one). */
  abstract contentLength(): number;
  /** Send a route's or a refusal's answer. */
  abstract answer(answer: RouteAnswer): void;
  /** Send a procedure's answer. */
  abstract send(result: TrpcAnswer): void;

  trpcRequest(): TrpcRequest {
    return {
      method: this.method,
      path: this.procedurePath,
      query: this.query,
      header: this.header,
      body: this.body,
      ctx: this.ctx as ComsContext,
    };
  }
}

export class NodeCall extends HubCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse, streams: SseStreams) {
    super(req.method ?? "GET", req.url ?? "/", streams);
    this.req = req;
    this.res = res;
  }

  readonly remote = (): string | undefined => this.req.socket.remoteAddress;

  readonly header = (name: string): string | undefined => rawHeader(this.req, name);

  contentLength(): number {
    return Number(this.header("content-length") ?? 0);
  }

  answer({ status, headers, body }: RouteAnswer): void {
    this.res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
    this.res.end(body);
  }

  send(result: TrpcAnswer): void {
    const { res } = this;
    if (result.kind === "json") {
      const headers: Record<string, string | number> = {
        vary: "trpc-accept, accept",
        "content-type": result.contentType ?? "application/json",
        "content-length": Buffer.byteLength(result.body),
      };
      if (result.allow) headers.allow = result.allow;
      res.writeHead(result.status, headers);
      res.end(result.body);
    } else if (result.kind === "empty") {
      res.writeHead(result.status, result.allow ? { allow: result.allow } : {});
      res.end();
    } else {
      // Event frames go straight to the socket, one write each, in a body that ends when the connection
      // does: through `res.write` every frame would be three chunked-encoding pieces, corked and flushed
      // a tick later as one writev. A stream is the last thing its connection carries either way.
      res.useChunkedEncodingByDefault = false;
      res.writeHead(200, NODE_SSE_HEADERS);
      res.flushHeaders();
      const { socket } = res;
      const stream = socket
        ? socketStream(
            socket,
            () => res.end(),
            () => res.destroy(),
          )
        : null;
      streamInto(this.streams, stream, result);
    }
  }
}

export class H1Call extends HubCall {
  private readonly head: RequestHead;
  private readonly conn: H1Connection;

  constructor(head: RequestHead, conn: H1Connection, streams: SseStreams) {
    super(head.method, head.target, streams);
    this.head = head;
    this.conn = conn;
  }

  readonly remote = (): string | undefined => this.conn.wire.remoteAddress;

  readonly header = (name: string): string | undefined => headerOf(this.head, name);

  contentLength(): number {
    return this.head.contentLength;
  }

  answer({ status, headers, body }: RouteAnswer): void {
    this.conn.respond(status, headerLines(headers), body);
  }

  send(result: TrpcAnswer): void {
    if (result.kind === "json") {
      const allow = result.allow ? `allow: ${result.allow}\r\n` : "";
      const lines =
        result.contentType === undefined
          ? JSON_HEAD_LINES
          : `vary: trpc-accept, accept\r\ncontent-type: ${result.contentType}\r\n`;
      this.conn.respond(result.status, lines + allow, result.body);
    } else if (result.kind === "empty") {
      this.conn.respond(result.status, result.allow ? `allow: ${result.allow}\r\n` : "", "");
    } else {
      streamInto(this.streams, this.conn.stream(SSE_HEAD_LINES), result);
    }
  }
}

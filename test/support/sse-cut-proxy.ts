/**
 * A TCP relay in front of a hub that reads the HTTP responses going back to
 * the client and cuts SSE streams (text/event-stream responses) exactly where
 * a rule says, counted in the stream's event bytes (after de-chunking), so a
 * test can put a cut on any boundary of an event: inside `data:`, right after
 * the `id:` line, between events. Everything else is relayed untouched.
 *
 * Two ways to cut: "end" finishes the body right at the cut point
 * (the client reads every byte before the cut, then the end: deterministic),
 * "reset" relays the bytes before the cut and then destroys both sockets, as a
 * flaky network would (the client may or may not read those bytes first).
 */
import type { Server, Socket } from "node:net";
import { listenRelay, type RelayBook, relayServer } from "./hub-proxy.ts";

export type CutMode = "end" | "reset";

/**
 * Where to cut one SSE response: called after each piece with all the event
 * bytes the response carried so far; returns the offset to cut at (only
 * bytes before it reach the client) or -1 to go on.
 */
export type CutRule = (events: Buffer, stream: number) => number;

export class SseCutProxy implements RelayBook {
  private readonly server: Server;
  readonly sockets = new Set<Socket>();
  private streamCount = 0;
  rule: CutRule = () => -1;
  mode: CutMode | (() => CutMode) = "end";
  cuts = 0;
  readonly requests: string[] = [];
  /** Every SSE response's event bytes as relayed (up to the cut), for checks on what the hub sent. */
  readonly relayed: Buffer[] = [];

  private constructor(targetPort: number) {
    this.server = relayServer(
      targetPort,
      this,
      (client, upstream) => {
        client.pipe(upstream);
        const reader = new ResponseReader(client, upstream, this);
        upstream.on("data", (chunk: Buffer) => reader.feed(chunk));
        upstream.once("end", () => client.end());
        client.once("close", () => upstream.destroy());
        upstream.once("close", () => {
          if (!reader.endedByCut) client.destroy();
        });
      },
      40,
    );
  }

  static async start(targetPort: number): Promise<SseCutProxy & { url: string }> {
    const proxy = new SseCutProxy(targetPort);
    return Object.assign(proxy, { url: await listenRelay(proxy.server) });
  }

  /** A new SSE response began: its number for the rule. */
  openStream(): number {
    this.relayed.push(Buffer.alloc(0));
    return this.streamCount++;
  }

  record(stream: number, bytes: Buffer): void {
    this.relayed[stream] = Buffer.concat([this.relayed[stream] as Buffer, bytes]);
  }

  modeNow(): CutMode {
    return typeof this.mode === "function" ? this.mode() : this.mode;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const CRLF2 = Buffer.from("\r\n\r\n");

type ReaderState = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailer" | "raw" | "dead";

/** One connection's response side: heads and bodies relayed as they are, SSE bodies watched and cut. */
class ResponseReader {
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly proxy: SseCutProxy;
  private pending: Buffer = Buffer.alloc(0);
  private state: ReaderState = "head";
  private remaining = 0;
  /**
   * The current response is SSE: its body is watched (de-chunked first when
   * chunked) and relayed in the same framing; `chunked` false is a body that
   * ends with the connection.
   */
  private sse: { stream: number; events: Buffer; chunked: boolean } | undefined;
  /** Set once this connection was cut: nothing more is relayed. */
  endedByCut = false;

  constructor(client: Socket, upstream: Socket, proxy: SseCutProxy) {
    this.client = client;
    this.upstream = upstream;
    this.proxy = proxy;
  }

  feed(chunk: Buffer): void {
    if (this.endedByCut) return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    // step() may cut, which ends the loop.
    while (this.pending.length > 0 && !this.endedByCut) {
      if (!this.step()) break;
    }
  }

  /** Consume what the current state can; false when it needs more bytes. */
  private step(): boolean {
    const buf = this.pending;
    switch (this.state) {
      case "head": {
        const end = buf.indexOf(CRLF2);
        if (end === -1) return false;
        let head = buf.subarray(0, end + 4).toString("latin1");
        this.pending = buf.subarray(end + 4);
        const status = Number(head.slice(9, 12));
        const header = (name: string) => new RegExp(`^${name}:\\s*(.*)\\r$`, "im").exec(head)?.[1] ?? "";
        const chunked = /chunked/i.test(header("transfer-encoding"));
        if (/^text\/event-stream/i.test(header("content-type"))) {
          // A cut stream must not leave a keep-alive socket behind that the client would reuse.
          head = head.replace(/^connection:.*\r$/im, "connection: close\r");
          this.sse = { stream: this.proxy.openStream(), events: Buffer.alloc(0), chunked };
        } else this.sse = undefined;
        this.client.write(Buffer.from(head, "latin1"));
        if (status === 204 || status === 304 || (status >= 100 && status < 200)) this.state = "head";
        else if (chunked) this.state = "chunk-size";
        else if (header("content-length") !== "") {
          this.remaining = Number(header("content-length"));
          this.state = this.remaining > 0 ? "length" : "head";
        } else this.state = "raw";
        return true;
      }
      case "length": {
        const n = Math.min(this.remaining, buf.length);
        this.client.write(buf.subarray(0, n));
        this.pending = buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.state = "head";
        return true;
      }
      case "raw":
        if (this.sse) this.relayEvents(buf);
        else this.client.write(buf);
        this.pending = Buffer.alloc(0);
        return true;
      case "chunk-size": {
        const eol = buf.indexOf("\r\n");
        if (eol === -1) return false;
        const line = buf.subarray(0, eol + 2);
        this.pending = buf.subarray(eol + 2);
        this.remaining = Number.parseInt(line.toString("latin1"), 16);
        if (!this.sse) this.client.write(line);
        this.state = this.remaining === 0 ? "trailer" : "chunk-data";
        return true;
      }
      case "chunk-data": {
        const n = Math.min(this.remaining, buf.length);
        const data = buf.subarray(0, n);
        this.pending = buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.state = "chunk-end";
        if (this.sse) this.relayEvents(data);
        else this.client.write(data);
        return true;
      }
      case "chunk-end":
      case "trailer": {
        if (buf.length < 2) return false;
        const eol = buf.indexOf("\r\n");
        if (eol === -1) return false;
        const line = buf.subarray(0, eol + 2);
        this.pending = buf.subarray(eol + 2);
        if (this.state === "chunk-end") {
          if (!this.sse) this.client.write(line);
          this.state = "chunk-size";
        } else {
          // Trailers end with an empty line; then the next response.
          if (!this.sse) this.client.write(line);
          else if (eol === 0) this.client.write("0\r\n\r\n");
          if (eol === 0) {
            this.state = "head";
            this.sse = undefined;
          }
        }
        return true;
      }
      default:
        return false;
    }
  }

  private relayEvents(data: Buffer): void {
    const sse = this.sse as { stream: number; events: Buffer; chunked: boolean };
    const before = sse.events.length;
    sse.events = Buffer.concat([sse.events, data]);
    const at = this.proxy.rule(sse.events, sse.stream);
    const upTo = at >= 0 ? Math.max(at, before) : sse.events.length;
    const piece = sse.events.subarray(before, upTo);
    if (piece.length > 0) {
      if (sse.chunked) {
        this.client.write(`${piece.length.toString(16)}\r\n`);
        this.client.write(piece);
        this.client.write("\r\n");
      } else this.client.write(piece);
      this.proxy.record(sse.stream, piece);
    }
    if (at >= 0) this.cut();
  }

  private cut(): void {
    this.proxy.cuts++;
    this.state = "dead";
    this.endedByCut = true;
    this.upstream.destroy();
    // "end": the body's end as its framing says it (the last chunk, or the connection closing).
    if (this.proxy.modeNow() === "end") this.client.end(this.sse?.chunked === false ? "" : "0\r\n\r\n");
    // Let the bytes before the cut leave first, then drop the connection as a network failure would.
    else setTimeout(() => this.client.destroy(), 5).unref();
  }
}

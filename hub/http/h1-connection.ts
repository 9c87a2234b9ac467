/**
 * HTTP/1.1 for the hub's own requests, read straight off the connection:
 * one request at a time per connection, each answered with a single write
 * of head and body, no request or response objects, no body stream. A
 * connection whose request is not of the plain kind (see h1-head.ts), or is
 * for a route the runtime's own server answers (dashboard, /mcp), is handed
 * over to that server from that request on, with the bytes already read,
 * once every answer before it is written. Deadlines follow node:http's
 * settings. The runtime's side of a connection is an `H1Wire`: node-h1.ts
 * for node:net, bun-h1.ts for Bun's sockets.
 */
import { STATUS_CODES } from "node:http";
import { OTHER, type RequestHead, readHead } from "./h1-head.ts";
import type { SseTransport } from "./sse-writer.ts";

export interface H1Options {
  /** false: this request, and the rest of its connection, goes to the runtime's own server. */
  takes(head: RequestHead): boolean;
  /** Answer `head` through `conn` (respond or stream); `body` is null when it was over `maxBodyBytes`. */
  serve(head: RequestHead, body: string | null, conn: H1Connection): void;
  maxBodyBytes: number;
  /** Milliseconds from a request's first byte to the end of its head, and to the end of its body. */
  headersTimeout: number;
  requestTimeout: number;
  /** Milliseconds a connection may sit between requests. */
  keepAliveTimeout: number;
}

/** An answer that lasts as long as its connection (an event stream). */
export interface H1Stream extends SseTransport {
  /** Call `fn` once the connection is gone. */
  onClose(fn: () => void): void;
}

/**
 * A connection as the reader uses it. The runtime's binding feeds the
 * reader what arrives (`H1Connection.received`, `ended`, `closed`).
 */
export interface H1Wire {
  readonly remoteAddress: string | undefined;
  /** Send an answer; a runtime may hold it to the end of the tick, never later. */
  send(text: string): void;
  /** Send what is held, then `text` if any, then close the connection. */
  end(text?: string): void;
  /** Close the connection now, dropping whatever is not sent. */
  destroy(): void;
  /** Send `head` and make the connection an event stream's. */
  stream(head: string): H1Stream;
  /** Stop feeding the reader; the runtime's own server reads the connection from `read` (bytes not answered yet) on. */
  handOff(read: Buffer): void;
}

const EMPTY = Buffer.alloc(0);
const LIVE = 0;
const STREAM = 1;
const GONE = 2;
const TIMED_OUT = "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

let dateText = "";
let dateAt = 0;
/** The Date header, rebuilt at most once a second (as node:http does). */
function httpDate(now: number): string {
  if (now - dateAt >= 1000) {
    dateAt = now;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

export class H1Connection {
  /** Unanswered bytes, from the start of the request being read. */
  private buf: Buffer = EMPTY;
  /** Bytes that arrived after `buf`, joined to it only once they are needed. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** How far into `buf` the end of a head was looked for already. */
  private searched = 0;
  private head: RequestHead | null = null;
  /** Body bytes still to drop (a body over the limit). */
  private skip = 0;
  private headOnly = false;
  private closeAfter = false;
  private pumping = false;
  /** A request is being answered; the next is not read until it is. */
  private busy = false;
  private mode = LIVE;
  /** When the request being read began (0: between requests), and when the last answer went out. */
  private since = 0;
  private idleSince: number;
  readonly wire: H1Wire;
  private readonly opts: H1Options;
  private readonly forget: (conn: H1Connection) => void;
  /** The Connection header lines of a kept-alive answer (with the keep-alive timeout, for clients to pace reuse). */
  private readonly keepAlive: string;

  constructor(wire: H1Wire, opts: H1Options, forget: (conn: H1Connection) => void, keepAlive: string) {
    this.wire = wire;
    this.opts = opts;
    this.forget = forget;
    this.keepAlive = keepAlive;
    this.idleSince = Date.now();
  }

  /** Answer the current request: status, header lines ("name: value\r\n" each), body. */
  respond(status: number, headers: string, body: string): void {
    if (this.mode !== LIVE) return;
    const length = status === 204 ? "" : `content-length: ${Buffer.byteLength(body)}\r\n`;
    this.wire.send(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n${headers}${length}date: ${httpDate(Date.now())}\r\n` +
        (this.closeAfter ? "connection: close\r\n\r\n" : this.keepAlive) +
        (this.headOnly || status === 204 ? "" : body),
    );
    this.answered();
  }

  /**
   * Answer the current request with a body that lasts as long as the
   * connection (an event stream): the head goes out now and the connection
   * is the stream's; whatever the client sends afterwards is ignored.
   */
  stream(headers: string): H1Stream | null {
    if (this.mode !== LIVE) return null;
    this.mode = STREAM;
    this.busy = false;
    this.buf = EMPTY;
    this.parts = [];
    return this.wire.stream(
      `HTTP/1.1 200 OK\r\n${headers}date: ${httpDate(Date.now())}\r\nconnection: close\r\n\r\n`,
    );
  }

  /** Past a deadline (see H1Options): drop an idle connection, answer a late request with 408. */
  expire(now: number): void {
    if (this.mode !== LIVE || this.busy) return;
    if (this.since === 0) {
      if (now - this.idleSince > this.opts.keepAliveTimeout) this.wire.destroy();
    } else if (now - this.since > (this.head ? this.opts.requestTimeout : this.opts.headersTimeout)) {
      this.mode = GONE;
      this.wire.end(TIMED_OUT);
    }
  }

  /** Bytes from the client. */
  readonly received = (chunk: Buffer): void => {
    if (this.mode !== LIVE) return;
    if (this.since === 0) this.since = Date.now();
    if (this.buf.length === 0 && this.partBytes === 0) this.buf = chunk;
    else {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
    }
    if (!this.busy) this.pump();
  };

  /** The client will send nothing more. */
  readonly ended = (): void => {
    // The client is done sending: finish the answer under way, if any, then close. A stream's reader
    // that sends its FIN has gone (a killed process, a closed tab): its stream ends now, as on node:http,
    // so the hub learns of it at once instead of at the next ping's failed write.
    if (this.mode === GONE) return;
    if (this.busy) this.closeAfter = true;
    else this.wire.end();
  };

  /** The connection is gone. */
  readonly closed = (): void => {
    this.mode = GONE;
    this.forget(this);
  };

  private available(): number {
    return this.buf.length + this.partBytes;
  }

  private join(): void {
    if (this.parts.length === 0) return;
    this.buf = Buffer.concat([this.buf, ...this.parts], this.available());
    this.parts = [];
    this.partBytes = 0;
  }

  /** Read and serve requests until one has to wait (for bytes or for its answer). */
  private pump(): void {
    this.pumping = true;
    try {
      while (!this.busy && this.mode === LIVE) {
        if (this.skip > 0) {
          this.join();
          const n = Math.min(this.skip, this.buf.length);
          this.skip -= n;
          this.buf = n === this.buf.length ? EMPTY : this.buf.subarray(n);
          if (this.skip > 0) return;
        }
        if (!this.head) {
          if (this.available() === 0) {
            this.since = 0;
            return;
          }
          this.join();
          const head = readHead(this.buf, 0, this.searched);
          if (head === null) {
            this.searched = this.buf.length;
            return;
          }
          this.searched = 0;
          if (head === OTHER || !this.opts.takes(head)) {
            this.handOff();
            return;
          }
          this.head = head;
        }
        const head = this.head;
        if (head.contentLength > this.opts.maxBodyBytes) {
          // Not kept: the answer (413) goes out now and the body is dropped as it arrives.
          this.buf = this.buf.subarray(head.size);
          this.skip = head.contentLength;
          this.dispatch(head, null);
          continue;
        }
        const end = head.size + head.contentLength;
        if (this.available() < end) return;
        this.join();
        const body = head.contentLength === 0 ? "" : this.buf.toString("utf8", head.size, end);
        this.buf = end === this.buf.length ? EMPTY : this.buf.subarray(end);
        this.dispatch(head, body);
      }
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(head: RequestHead, body: string | null): void {
    this.head = null;
    this.busy = true;
    this.headOnly = head.method === "HEAD";
    if (head.close) this.closeAfter = true;
    this.opts.serve(head, body, this);
  }

  private answered(): void {
    this.busy = false;
    const now = Date.now();
    this.idleSince = now;
    this.since = this.available() > 0 ? now : 0;
    if (this.closeAfter) {
      this.mode = GONE;
      this.wire.end();
    } else if (!this.pumping && this.available() > 0) this.pump();
  }

  /**
   * The runtime's own server takes the connection from the current request on. Nothing before it is
   * unanswered: a request is read only once the one before it is answered.
   */
  private handOff(): void {
    this.join();
    const read = this.buf;
    this.buf = EMPTY;
    this.mode = GONE;
    this.forget(this);
    this.wire.handOff(read);
  }
}

/** Every connection served this way, and the one timer that holds them to their deadlines. */
export class H1Connections {
  private readonly open = new Set<H1Connection>();
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: H1Options;
  private readonly keepAlive: string;

  constructor(opts: H1Options) {
    this.opts = opts;
    this.keepAlive = `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(opts.keepAliveTimeout / 1000)}\r\n\r\n`;
  }

  /** Read `wire`'s requests; the binding feeds what arrives to the connection returned. */
  add(wire: H1Wire): H1Connection {
    const conn = new H1Connection(wire, this.opts, this.forget, this.keepAlive);
    this.open.add(conn);
    // Deadlines are checked every second, as node:http checks its own (less often, by default).
    this.timer ??= setInterval(() => this.expire(), 1000).unref();
    return conn;
  }

  private readonly forget = (conn: H1Connection): void => {
    this.open.delete(conn);
  };

  private expire(): void {
    const now = Date.now();
    for (const conn of this.open) conn.expire(now);
  }

  /** Drop every connection (streams included). */
  closeAll(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const conn of this.open) conn.wire.destroy();
    this.open.clear();
  }
}

/**
 * HTTP/1.1 on a bare TCP socket, for tests that look at the hub on the wire:
 * requests are bytes written by hand (so they can be split, pipelined, or
 * malformed on purpose) and responses are parsed from the bytes that come
 * back, one at a time and in order (status line, headers, then a body framed
 * by Content-Length, chunked encoding, or the connection closing).
 */
import { connect, type Socket } from "node:net";

export interface RawResponse {
  version: string;
  status: number;
  reason: string;
  /** Lower-cased names; a header sent more than once keeps every value, in order. */
  headers: Map<string, string[]>;
  body: Buffer;
  /** The body as UTF-8 text. */
  text: string;
}

/** One header's value (the first, if repeated). */
export function header(response: RawResponse, name: string): string | undefined {
  return response.headers.get(name.toLowerCase())?.[0];
}

/** A tRPC answer's data (`result.data.json`), failing clearly on anything else. */
export function trpcData<T = unknown>(response: RawResponse): T {
  if (response.status !== 200) throw new Error(`expected 200, got ${response.status}: ${response.text}`);
  return (JSON.parse(response.text) as { result: { data: { json: T } } }).result.data.json;
}

export interface RequestSpec {
  method?: string;
  path: string;
  /** Written in this order and with these spellings; Host comes first unless given. */
  headers?: Array<[string, string]>;
  /** Framed with Content-Length unless a Transfer-Encoding or Content-Length header is given. */
  body?: string | Buffer;
  version?: string;
}

/** The bytes of one request. */
export function requestBytes(spec: RequestSpec): Buffer {
  const headers = spec.headers ?? [];
  const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name);
  const lines = [
    `${spec.method ?? (spec.body === undefined ? "GET" : "POST")} ${spec.path} ${spec.version ?? "HTTP/1.1"}`,
  ];
  if (!has("host")) lines.push("Host: 127.0.0.1");
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  const body = spec.body === undefined ? Buffer.alloc(0) : Buffer.from(spec.body);
  if (spec.body !== undefined && !has("content-length") && !has("transfer-encoding"))
    lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

/** A body in chunked transfer coding, cut into the given chunk sizes (bytes), then the last chunk. */
export function chunked(body: string | Buffer, sizes: number[]): Buffer {
  const bytes = Buffer.from(body);
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    const piece = bytes.subarray(at, at + size);
    at += piece.length;
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
  }
  if (at < bytes.length) {
    const rest = bytes.subarray(at);
    parts.push(Buffer.from(`${rest.length.toString(16)}\r\n`), rest, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}

const HEAD_END = Buffer.from("\r\n\r\n");

/** One client connection: write bytes, read whole responses in order, see the server close. */
export class RawConnection {
  private readonly socket: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;
  private error: Error | undefined;
  private waiters: Array<() => void> = [];
  /** Resolves once the socket is closed (by either side, or by an error such as a reset). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.poke();
    });
    socket.on("end", () => {
      this.ended = true;
      this.poke();
    });
    // A reset or a write after the server closed: the connection is over either way.
    socket.on("error", (error) => {
      this.error = error;
      this.ended = true;
      this.poke();
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.ended = true;
        this.poke();
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        socket.setNoDelay(true);
        resolve(new RawConnection(socket));
      });
    });
  }

  /** Write bytes; resolves once they are handed to the OS (or the socket failed). */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else this.socket.write(data, () => resolve());
    });
  }

  /** Write each byte on its own, waiting for each to leave before the next. */
  async writeBytewise(data: string | Buffer): Promise<void> {
    const bytes = Buffer.from(data);
    for (let i = 0; i < bytes.length; i++) await this.write(bytes.subarray(i, i + 1));
  }

  /**
   * The next whole response. `head: true` for the answer to a HEAD request
   * (no body whatever its headers say). A 1xx comes back on its own, bodiless.
   */
  async response(opts: { head?: boolean } = {}): Promise<RawResponse> {
    for (;;) {
      const parsed = this.tryParse(opts.head ?? false);
      if (parsed) return parsed;
      if (this.ended) {
        throw new Error(
          `the connection closed before a whole response${this.error ? ` (${this.error.message})` : ""}; ` +
            `unread: ${JSON.stringify(this.buffer.toString("latin1").slice(0, 300))}`,
        );
      }
      await this.more();
    }
  }

  /** The status line and headers of a response whose body keeps coming (a stream); its body stays unread. */
  async responseHead(): Promise<RawResponse> {
    for (;;) {
      const end = this.buffer.indexOf(HEAD_END);
      if (end !== -1) {
        const response = parseHead(this.buffer.subarray(0, end).toString("latin1"));
        this.buffer = this.buffer.subarray(end + HEAD_END.length);
        return response;
      }
      if (this.ended) throw new Error("the connection closed before a response head");
      await this.more();
    }
  }

  /** Body bytes read so far as text, once they contain `text` (for a stream that stays open). */
  async bodyUntil(text: string): Promise<string> {
    for (;;) {
      const got = this.buffer.toString("utf8");
      if (got.includes(text)) return got;
      if (this.ended) throw new Error(`the connection closed before ${JSON.stringify(text)}; got ${got}`);
      await this.more();
    }
  }

  /**
   * Whole responses until `count` of them, or until the connection closes
   * (`closed`; bytes of a response cut short stay for serverClosed()).
   */
  async responses(count = Number.POSITIVE_INFINITY): Promise<{ answers: RawResponse[]; closed: boolean }> {
    const answers: RawResponse[] = [];
    while (answers.length < count) {
      try {
        answers.push(await this.response());
      } catch (error) {
        if (!this.ended) throw error;
        return { answers, closed: true };
      }
    }
    return { answers, closed: false };
  }

  /** Wait for the server to close the connection; returns whatever it sent that no response read took. */
  async serverClosed(): Promise<string> {
    while (!this.ended) await this.more();
    return this.buffer.toString("latin1");
  }

  /** Drop the connection from this side, abruptly. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Half-close from this side (FIN) after what was written. */
  end(): void {
    this.socket.end();
  }

  private more(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private poke(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** A whole response off the front of the buffer, or undefined while bytes are missing. */
  private tryParse(isHead: boolean): RawResponse | undefined {
    const end = this.buffer.indexOf(HEAD_END);
    if (end === -1) return undefined;
    const response = parseHead(this.buffer.subarray(0, end).toString("latin1"));
    const start = end + HEAD_END.length;
    const { status } = response;
    const take = (body: Buffer, consumed: number): RawResponse => {
      this.buffer = this.buffer.subarray(consumed);
      response.body = body;
      response.text = body.toString("utf8");
      return response;
    };
    if (isHead || (status >= 100 && status < 200) || status === 204 || status === 304)
      return take(Buffer.alloc(0), start);
    if (header(response, "transfer-encoding")?.toLowerCase().includes("chunked")) {
      const body = readChunked(this.buffer, start);
      return body ? take(body.body, body.end) : undefined;
    }
    const length = header(response, "content-length");
    if (length !== undefined) {
      const n = Number(length);
      if (this.buffer.length - start < n) return undefined;
      return take(Buffer.from(this.buffer.subarray(start, start + n)), start + n);
    }
    // Delimited by the connection closing.
    if (!this.ended) return undefined;
    return take(Buffer.from(this.buffer.subarray(start)), this.buffer.length);
  }
}

function parseHead(text: string): RawResponse {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const match = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!match) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`not a header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  return {
    version: match[1] as string,
    status: Number(match[2]),
    reason: match[3] ?? "",
    headers,
    body: Buffer.alloc(0),
    text: "",
  };
}

/** A chunked body starting at `at`: the decoded bytes and where the message ends, or undefined if incomplete. */
function readChunked(buffer: Buffer, at: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let pos = at;
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", pos);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(
      buffer.subarray(pos, lineEnd).toString("latin1").split(";")[0] as string,
      16,
    );
    if (Number.isNaN(size)) throw new Error("bad chunk size line");
    pos = lineEnd + 2;
    if (size === 0) {
      // Trailers (none expected), then the empty line.
      for (;;) {
        const end = buffer.indexOf("\r\n", pos);
        if (end === -1) return undefined;
        if (end === pos) return { body: Buffer.concat(parts), end: end + 2 };
        pos = end + 2;
      }
    }
    if (buffer.length < pos + size + 2) return undefined;
    parts.push(buffer.subarray(pos, pos + size));
    pos += size + 2;
  }
}

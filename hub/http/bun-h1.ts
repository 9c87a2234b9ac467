/**
 * The plain reader (h1-connection.ts) on Bun's own sockets (Bun.listen),
 * and the hand-over of a connection it leaves to Bun.serve. Bun.serve
 * cannot adopt a socket, so a handed-over connection is piped, bytes as
 * they come, to a Bun.serve listening on loopback for this hub alone; that
 * server learns the client's address from the pipe's port (`proxiedFrom`)
 * and refuses connections that are not the hub's own pipes.
 */
import type { H1Connection, H1Connections, H1Stream, H1Wire } from "./h1-connection.ts";

/** The part of a Bun socket used here. `data` is what the listener's handlers dispatch to. */
export interface BunSocket<T> {
  data: T;
  readonly remoteAddress: string;
  readonly localPort: number;
  /** Bytes taken (fewer than given when the socket is full: the rest is not kept), -1 once closed. */
  write(data: string | Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

interface BunListener {
  port: number;
  stop(closeActiveConnections?: boolean): void;
}

interface SocketHandlers<T> {
  open?(socket: BunSocket<T>): void;
  data(socket: BunSocket<T>, chunk: Buffer): void;
  drain(socket: BunSocket<T>): void;
  end(socket: BunSocket<T>): void;
  close(socket: BunSocket<T>): void;
  error?(socket: BunSocket<T>, error: Error): void;
}

interface BunSockets {
  listen<T>(options: {
    hostname: string;
    port: number;
    allowHalfOpen: boolean;
    tls?: { cert: string; key: string };
    socket: SocketHandlers<T>;
  }): BunListener;
  connect<T>(options: { hostname: string; port: number; socket: SocketHandlers<T> }): Promise<BunSocket<T>>;
}

const bun = () => (globalThis as unknown as { Bun: BunSockets }).Bun;

/** A pipe stops reading one side while this much waits for the other. */
const PIPE_HIGH_WATER = 64 * 1024;

/**
 * What a socket could not take yet, sent as it drains, in order. Bun's
 * write takes what fits and keeps none of the rest, unlike node:net's.
 */
class Outbox {
  bytes = 0;
  private readonly queue: Uint8Array[] = [];
  private ending = false;
  private drained: Array<() => void> = [];
  private readonly socket: BunSocket<unknown>;

  constructor(socket: BunSocket<unknown>) {
    this.socket = socket;
  }

  write(data: string | Uint8Array): void {
    if (this.ending) return;
    if (this.bytes > 0) {
      this.keep(typeof data === "string" ? Buffer.from(data) : data);
      return;
    }
    const taken = this.socket.write(data);
    if (taken < 0) return;
    const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
    if (taken >= size) return;
    this.keep((typeof data === "string" ? Buffer.from(data) : data).subarray(taken));
  }

  /** The socket can take more. */
  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0] as Uint8Array;
      const taken = this.socket.write(head);
      if (taken < 0) return;
      this.bytes -= Math.max(taken, 0);
      if (taken < head.byteLength) {
        this.queue[0] = head.subarray(taken);
        return;
      }
      this.queue.shift();
    }
    if (this.ending) this.socket.end();
    const fns = this.drained;
    this.drained = [];
    for (const fn of fns) fn();
  }

  /** Close once everything queued has gone. */
  end(): void {
    if (this.ending) return;
    this.ending = true;
    if (this.bytes === 0) this.socket.end();
  }

  onDrain(fn: () => void): void {
    if (this.bytes === 0) queueMicrotask(fn);
    else this.drained.push(fn);
  }

  private keep(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.bytes += bytes.byteLength;
  }
}

/** Where a client socket's bytes go: its plain reader, then (once handed over) the pipe to Bun.serve. */
interface Feed {
  received(chunk: Buffer): void;
  ended(): void;
  closed(): void;
}

class BunWire implements H1Wire {
  feed: Feed;
  readonly out: Outbox;
  private readonly socket: BunSocket<BunWire>;
  private readonly toServe: (wire: BunWire, read: Buffer) => Feed;
  private closeFns: Array<() => void> = [];

  constructor(socket: BunSocket<BunWire>, toServe: (wire: BunWire, read: Buffer) => Feed) {
    this.socket = socket;
    this.toServe = toServe;
    this.out = new Outbox(socket as BunSocket<unknown>);
    this.feed = { received: () => {}, ended: () => {}, closed: () => {} };
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  send(text: string): void {
    this.out.write(text);
  }

  end(text?: string): void {
    if (text !== undefined) this.out.write(text);
    this.out.end();
  }

  destroy(): void {
    this.socket.terminate();
  }

  stream(head: string): H1Stream {
    this.out.write(head);
    return {
      write: (chunk) => this.out.write(chunk),
      buffered: () => this.out.bytes,
      end: () => this.out.end(),
      cut: () => this.socket.terminate(),
      onDrain: (fn) => this.out.onDrain(fn),
      onClose: (fn) => this.closeFns.push(fn),
    };
  }

  handOff(read: Buffer): void {
    this.feed = this.toServe(this, read);
  }

  /** The socket is gone. */
  gone(): void {
    this.feed.closed();
    const fns = this.closeFns;
    this.closeFns = [];
    for (const fn of fns) fn();
  }
}

/** Write `chunk` to `out`; once `out` is `PIPE_HIGH_WATER` behind, pause `source` until it drains. */
function forward(chunk: Buffer, out: Outbox, source: { pause(): void; resume(): void }): void {
  out.write(chunk);
  if (out.bytes <= PIPE_HIGH_WATER) return;
  source.pause();
  out.onDrain(() => source.resume());
}

/**
 * A handed-over client connection piped to the hub's Bun.serve, both ways,
 * each side paused while the other is `PIPE_HIGH_WATER` behind.
 */
class ServePipe implements Feed {
  private up: BunSocket<ServePipe> | null = null;
  private upOut: Outbox | null = null;
  private early: Buffer[] = [];
  private clientEnded = false;
  private done = false;
  private readonly client: BunWire;
  private readonly proxied: Map<number, string>;

  constructor(client: BunWire, read: Buffer, port: number, proxied: Map<number, string>) {
    this.client = client;
    this.proxied = proxied;
    if (read.length > 0) this.early.push(read);
    bun()
      .connect<ServePipe>({
        hostname: "127.0.0.1",
        port,
        socket: {
          open: (up) => {
            up.data = this;
            this.opened(up);
          },
          data: (up, chunk) => forward(chunk, client.out, up),
          drain: () => this.upOut?.flush(),
          end: () => client.out.end(),
          close: () => this.upClosed(),
        },
      })
      .catch(() => client.destroy());
  }

  private opened(up: BunSocket<ServePipe>): void {
    if (this.done) {
      up.terminate();
      return;
    }
    this.up = up;
    this.upOut = new Outbox(up as BunSocket<unknown>);
    this.proxied.set(up.localPort, this.client.remoteAddress ?? "unknown");
    for (const chunk of this.early) this.received(chunk);
    this.early = [];
    if (this.clientEnded) this.upOut.end();
  }

  received(chunk: Buffer): void {
    const out = this.upOut;
    if (!out) {
      this.early.push(chunk);
      return;
    }
    forward(chunk, out, this.client);
  }

  ended(): void {
    this.clientEnded = true;
    this.upOut?.end();
  }

  closed(): void {
    this.done = true;
    this.up?.terminate();
  }

  private upClosed(): void {
    if (this.up) this.proxied.delete(this.up.localPort);
    this.client.out.end();
  }
}

/**
 * Listen for agents: each connection read by `connections` until it is
 * handed over, from then on piped to the Bun.serve on loopback `servePort`
 * (`proxied` maps that pipe's port to the client's address).
 */
export function listenBun(
  opts: { host: string; port: number; tls?: { cert: string; key: string } },
  connections: H1Connections,
  servePort: number,
  proxied: Map<number, string>,
): BunListener {
  const toServe = (wire: BunWire, read: Buffer): Feed => new ServePipe(wire, read, servePort, proxied);
  return bun().listen<BunWire>({
    hostname: opts.host,
    port: opts.port,
    // A client that is done sending still gets the answer under way (as node:http gives it).
    allowHalfOpen: true,
    ...(opts.tls ? { tls: opts.tls } : {}),
    socket: {
      open: (socket) => {
        const wire = new BunWire(socket, toServe);
        socket.data = wire;
        const conn: H1Connection = connections.add(wire);
        wire.feed = conn;
      },
      data: (socket, chunk) => socket.data.feed.received(chunk),
      drain: (socket) => socket.data.out.flush(),
      end: (socket) => socket.data.feed.ended(),
      close: (socket) => socket.data.gone(),
    },
  });
}

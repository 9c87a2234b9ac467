/**
 * The plain reader (h1-connection.ts) on node:net sockets: answers corked to
 * the end of the tick, event streams written straight to the socket, and
 * the hand-over to node:http.
 */
import type { Socket } from "node:net";
import type { H1Connections, H1Stream, H1Wire } from "./h1-connection.ts";

/** Sockets corked until the end of this tick, uncorked by one nextTick for all of them. */
let corked: Socket[] = [];
function uncorkAll(): void {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
}

/** An event stream written straight into `socket`, one write per frame. */
export function socketStream(socket: Socket, end: () => void, cut: () => void): H1Stream {
  return {
    write: (chunk) => void socket.write(chunk),
    buffered: () => socket.writableLength,
    end,
    cut,
    onDrain: (fn) => socket.once("drain", fn),
    onClose: (fn) => socket.once("close", fn),
  };
}

class NodeWire implements H1Wire {
  private readonly socket: Socket;
  private readonly toNode: (socket: Socket, read: Buffer) => void;
  /** Set by `accept` once the reader exists (the reader needs the wire first). */
  detach: () => void = () => {};

  constructor(socket: Socket, toNode: (socket: Socket, read: Buffer) => void) {
    this.socket = socket;
    this.toNode = toNode;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  send(text: string): void {
    // Sent at the end of the tick, as node:http sends its answers: the events this request caused
    // (written to other agents' streams in the same tick) go out first.
    this.socket.cork();
    if (corked.push(this.socket) === 1) process.nextTick(uncorkAll);
    this.socket.write(text);
  }

  end(text?: string): void {
    if (text === undefined) this.socket.end();
    else this.socket.end(text);
  }

  destroy(): void {
    this.socket.destroy();
  }

  stream(head: string): H1Stream {
    const { socket } = this;
    socket.write(head);
    return socketStream(
      socket,
      () => socket.end(),
      () => socket.destroy(),
    );
  }

  handOff(read: Buffer): void {
    this.detach();
    const { socket } = this;
    // The answers before it go out now: node:http may answer the next request by closing the socket.
    while (socket.writableCorked > 0) socket.uncork();
    this.toNode(socket, read);
  }
}

/**
 * The listener for new sockets: each is read by `connections`, and a
 * connection the reader leaves goes to `toNode` with the bytes it read.
 */
export function acceptNode(
  connections: H1Connections,
  toNode: (socket: Socket, read: Buffer) => void,
): (socket: Socket) => void {
  return (socket) => {
    const wire = new NodeWire(socket, toNode);
    const conn = connections.add(wire);
    const failed = () => socket.destroy();
    socket.on("data", conn.received);
    socket.on("end", conn.ended);
    socket.on("error", failed);
    socket.on("close", conn.closed);
    wire.detach = () => {
      socket.off("data", conn.received);
      socket.off("end", conn.ended);
      socket.off("error", failed);
      socket.off("close", conn.closed);
    };
  };
}

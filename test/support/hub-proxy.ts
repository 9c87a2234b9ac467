/** A TCP relay in front of a hub so a test can cut live connections (an SSE stream mid-way). */

import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";

/** What every relay here keeps: the open sockets (to cut them) and the request lines that went through. */
export interface RelayBook {
  readonly sockets: Set<Socket>;
  /** The request line of every HTTP request that went through ("POST /trpc/messages.ack"). */
  readonly requests: string[];
}

/**
 * A loopback listener that pairs each client with a new connection to the
 * target port, tracked in `book` (errors swallowed: the tests cut on purpose);
 * `wire` then joins the two sockets as the relay needs.
 */
export function relayServer(
  targetPort: number,
  book: RelayBook,
  wire: (client: Socket, upstream: Socket) => void,
  pathChars = Number.POSITIVE_INFINITY,
): Server {
  return createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      book.sockets.add(socket);
      socket.once("close", () => book.sockets.delete(socket));
      socket.on("error", () => {});
    }
    client.on("data", (chunk: Buffer) => {
      for (const match of chunk.toString("latin1").matchAll(/^(GET|POST|HEAD) (\S+) HTTP\/1\.1\r$/gm)) {
        book.requests.push(`${match[1]} ${(match[2] as string).slice(0, pathChars)}`);
      }
    });
    wire(client, upstream);
  });
}

/** Listen on a free loopback port; the relay's base URL. */
export async function listenRelay(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export class CuttableProxy implements RelayBook {
  private readonly server: Server;
  readonly sockets = new Set<Socket>();
  cuts = 0;
  readonly requests: string[] = [];

  private constructor(targetPort: number) {
    this.server = relayServer(targetPort, this, (client, upstream) => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    });
  }

  static async start(targetPort: number): Promise<CuttableProxy & { url: string }> {
    const proxy = new CuttableProxy(targetPort);
    return Object.assign(proxy, { url: await listenRelay(proxy.server) });
  }

  /** Drop every open connection at once, as a flaky network would. */
  cut(): void {
    this.cuts++;
    for (const socket of this.sockets) socket.destroy();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

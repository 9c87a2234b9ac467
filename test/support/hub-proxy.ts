/** A TCP relay in front of a hub so a test can cut live connections (an SSE stream mid-way). */

import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";

export class CuttableProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  cuts = 0;
  /** The request line of every HTTP request that went through ("POST /trpc/messages.ack"). */
  readonly requests: string[] = [];

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once("close", () => this.sockets.delete(socket));
        socket.on("error", () => {});
      }
      client.on("data", (chunk: Buffer) => {
        for (const match of chunk.toString("latin1").matchAll(/^(GET|POST|HEAD) (\S+) HTTP\/1\.1\r$/gm)) {
          this.requests.push(`${match[1]} ${match[2]}`);
        }
      });
      client.pipe(upstream);
      upstream.pipe(client);
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    });
  }

  static async start(targetPort: number): Promise<CuttableProxy & { url: string }> {
    const proxy = new CuttableProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    const port = (proxy.server.address() as AddressInfo).port;
    return Object.assign(proxy, { url: `http://127.0.0.1:${port}` });
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

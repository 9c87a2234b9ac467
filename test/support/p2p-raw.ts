/** A raw node:net client for a peer socket: writes arbitrary bytes, reads node-ipc frames back. */
import { connect, type Socket } from "node:net";

export interface RawFrame {
  type: string;
  data: {
    k: string;
    id: number | null;
    data?: unknown;
    error?: { json?: { message?: string; data?: { coms_code?: string } } };
  };
}

export class RawConnection {
  readonly socket: Socket;
  readonly frames: RawFrame[] = [];
  closed = false;
  private buffer = "";
  private readonly wakers = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let end = this.buffer.indexOf("\f");
      while (end !== -1) {
        this.frames.push(JSON.parse(this.buffer.slice(0, end)));
        this.buffer = this.buffer.slice(end + 1);
        end = this.buffer.indexOf("\f");
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static open(path: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      socket.once("connect", () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** A well-formed request frame (input already superjson-shaped, e.g. `{ json: {...} }`). */
  request(id: number, type: string, path: string, input?: unknown): void {
    this.write(`${JSON.stringify({ type: "coms", data: { k: "req", id, type, path, input } })}\f`);
  }

  /** Wait (bounded) for a frame matching `test`, taking it out of the list. */
  async next(test: (frame: RawFrame) => boolean, timeoutMs = 5000): Promise<RawFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex(test);
      if (index !== -1) return this.frames.splice(index, 1)[0] as RawFrame;
      if (this.closed) throw new Error("connection closed while waiting for a frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakers.add(done);
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const wakers = [...this.wakers];
    this.wakers.clear();
    for (const wake of wakers) wake();
  }
}

export function comsCode(frame: RawFrame): string | undefined {
  return frame.data.error?.json?.data?.coms_code;
}

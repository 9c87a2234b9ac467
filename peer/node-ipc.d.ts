/** The slice of node-ipc 14 (plain JavaScript, no bundled types) that pi-coms uses. */
declare module "node-ipc" {
  import type { Server as NetServer, Socket } from "node:net";

  export interface IPCConfig {
    appspace: string;
    socketRoot: string;
    id: string;
    parser: string | (new (config: IPCConfig) => unknown);
    maxMessageSize: number;
    maxPendingBytes: number;
    maxEventNameLength: number;
    messageTimeout: number;
    silent: boolean;
    logPayloads: boolean;
    maxConnections: number;
    retry: number;
    maxRetries: number;
    stopRetrying: boolean;
    unlink: boolean;
    readableAll: boolean;
    writableAll: boolean;
    secureSocketRoot: boolean;
    delimiter: string;
    encoding: string;
  }

  /** node-ipc's event emitter (event-pubsub): `*` listens to every event, with the type first. */
  interface PubSub {
    on(type: string, handler: (...args: never[]) => void): this;
    off(type?: string, handler?: ((...args: never[]) => void) | "*"): this;
  }

  export interface IPCClient extends PubSub {
    socket: Socket | false;
    emit(type: string, data: unknown): boolean;
    /** The parser's framing of one event (throws ERR_IPC_FRAME_TOO_LARGE over the limit). */
    encode(type: string, data: unknown): string;
    /** Writes already-framed bytes, dropping the connection past maxPendingBytes. */
    send(message: string): boolean;
  }

  export interface IPCServer extends PubSub {
    server: NetServer | false;
    sockets: Socket[];
    start(): void;
    stop(): void;
    emit(socket: Socket, type: string, data: unknown): boolean;
    /** The parser's framing of one event (throws ERR_IPC_FRAME_TOO_LARGE over the limit). */
    encode(type: string, data: unknown): string;
    /** Writes already-framed bytes, dropping the socket past maxPendingBytes. */
    writeStream(socket: Socket, message: string): boolean;
  }

  export class IPCModule {
    config: IPCConfig;
    of: Record<string, IPCClient | undefined>;
    server: IPCServer | false;
    connectTo(id: string, path: string, callback?: () => void): void;
    disconnect(id: string): void;
    serve(path: string, callback?: () => void): void;
  }

  export class IPCProtocolError extends Error {
    code: string;
    constructor(code: string, message: string);
  }

  export class GuardedParser {
    constructor(config: IPCConfig);
    profile: string;
    raw: boolean;
    encoding: string;
    delimiter: string;
    maxMessageSize: number;
    messageTimeout: number;
    encode(type: string, data: unknown): string;
    read(buffer: string, data: string, receive: (message: unknown) => void): string;
    decodeMessage(frame: string): { type: string; data: unknown };
  }

  const singleton: IPCModule;
  export default singleton;
}

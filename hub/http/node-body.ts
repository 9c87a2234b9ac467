/**
 * A request body on node:http, read up to a limit and decoded once, whole (a
 * character split between two chunks stays whole). One reader for every route
 * of the Node hub: tRPC, /mcp and the dashboard.
 */
import type { IncomingMessage } from "node:http";

/**
 * Read `req`'s body: `done(text)` at its end, or `done(null)` as soon as it
 * grows past `limit` bytes (the rest is then read and dropped), `failed` if
 * the request breaks off. Callbacks rather than a promise: this is on every
 * tRPC request's path.
 */
export function collectBody(
  req: IncomingMessage,
  limit: number,
  done: (body: string | null) => void,
  failed: (error: Error) => void,
): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const onData = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= limit) {
      chunks.push(chunk);
      return;
    }
    req.off("data", onData);
    req.resume();
    done(null);
  };
  req.on("data", onData);
  req.once("end", () => {
    if (bytes > limit) return;
    done(
      chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8"),
    );
  });
  req.once("error", failed);
}

/** The body as text, or null once it grows past `limit`. */
export function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => collectBody(req, limit, resolve, reject));
}

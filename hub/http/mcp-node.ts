/**
 * The /mcp route under node:http: the request (its body read up to the
 * hub's limit) becomes a web Request for the MCP route, and its Response,
 * SSE streams included, is written back as it comes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpRoute } from "./mcp-route.ts";
import { readBody } from "./node-body.ts";

export async function serveMcpNode(
  route: McpRoute,
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
): Promise<void> {
  const method = req.method ?? "GET";
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  let body: string | undefined;
  if (method === "POST") {
    const read = await readBody(req, maxBodyBytes).catch(() => null);
    if (read === null) {
      res.writeHead(413, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          jsonrpc: "2.0",
          error: { code: -32600, message: "request body too large" },
          id: null,
        }),
      );
      return;
    }
    body = read;
  } else req.resume();
  const closed = new AbortController();
  res.once("close", () => closed.abort());
  let response: Response;
  try {
    response = await route.handle(
      new Request(`http://hub${req.url ?? "/"}`, {
        method,
        headers,
        signal: closed.signal,
        ...(body !== undefined ? { body } : {}),
      }),
      req.socket.remoteAddress,
    );
  } catch {
    if (!res.headersSent) res.writeHead(500).end();
    return;
  }
  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    out[name] = value;
  });
  res.writeHead(response.status, out);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  res.once("close", () => void reader.cancel().catch(() => undefined));
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value))
        await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    }
  } catch {
    // the reader went away or the session closed
  }
  res.end();
}

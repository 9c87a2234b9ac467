/**
 * The hub's /mcp route: MCP over Streamable HTTP, so a remote coding agent
 * joins by URL with no local process. One MCP session is one agent (an
 * in-process client of this hub's backend); the session closing (DELETE, the
 * hub stopping, or no request and no open stream for the idle time) makes
 * the agent leave, and what it held ends PEER_GONE. The hub token is checked
 * by the same RequestAuth (and lockout) as every other request; bodies are
 * bounded like tRPC's. Both runtimes hand it a web Request (node.ts builds
 * one); the MCP SDK is loaded with the first /mcp request.
 */
import { randomUUID } from "node:crypto";
import type { ComsBackend } from "../../contract/router.ts";
import { AgentName, Color } from "../../contract/schemas.ts";
import type { RequestAuth } from "./auth.ts";

export const MCP_PATH = "/mcp";

export interface McpRouteOptions {
  backend: ComsBackend;
  auth: RequestAuth;
  maxBodyBytes: number;
  heartbeatMs: number;
  replyTimeoutMs: number;
  /** Longest a blocking tool call waits (PI_COMS_MCP_MAX_WAIT_MS). */
  maxWaitMs: number;
  progressMs: number;
  /** Open MCP sessions at most; a new one past it is refused 503; 0 = no limit. */
  maxSessions: number;
  /** A session with no request and no open stream for this long is closed; 0 = never. */
  idleMs: number;
}

interface Session {
  transport: { handleRequest(req: Request): Promise<Response>; close(): Promise<void> };
  agent: { leave(why?: string): Promise<void> };
  lastSeen: number;
  /** Requests being answered and streams open right now. */
  busy: number;
}

function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export class McpRoute {
  private readonly opts: McpRouteOptions;
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(opts: McpRouteOptions) {
    this.opts = opts;
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(1_000, Math.min(opts.idleMs / 4 || 60_000, 60_000)),
    );
    this.sweeper.unref();
  }

  owns(path: string): boolean {
    return path === MCP_PATH;
  }

  get size(): number {
    return this.sessions.size;
  }

  async handle(req: Request, remote: string | undefined): Promise<Response> {
    const auth = this.opts.auth.check((name) => req.headers.get(name), remote);
    if (!auth.ok) {
      return jsonRpcError(
        auth.status,
        -32001,
        auth.message,
        auth.status === 429
          ? { "retry-after": String(auth.retryAfterSec) }
          : { "www-authenticate": "Bearer" },
      );
    }
    if (Number(req.headers.get("content-length") ?? 0) > this.opts.maxBodyBytes)
      return jsonRpcError(413, -32600, `request body over ${this.opts.maxBodyBytes} bytes`);
    if (this.closed) return jsonRpcError(503, -32000, "the hub is shutting down");
    const id = req.headers.get("mcp-session-id");
    if (id) {
      const session = this.sessions.get(id);
      if (!session) return jsonRpcError(404, -32001, "Session not found");
      return this.serve(session, req);
    }
    if (req.method !== "POST") return jsonRpcError(400, -32000, "no mcp-session-id: start with initialize");
    if (this.opts.maxSessions > 0 && this.sessions.size >= this.opts.maxSessions)
      return jsonRpcError(503, -32000, `the hub serves ${this.opts.maxSessions} MCP sessions already`);
    const identity = identityFrom(new URL(req.url));
    if (typeof identity === "string") return jsonRpcError(400, -32602, identity);
    return this.serve(await this.open(identity), req);
  }

  private async open(identity: Identity): Promise<Session> {
    const [{ WebStandardStreamableHTTPServerTransport }, { McpAgent }, { InProcessClient }, who] =
      await Promise.all([
        import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"),
        import("../../mcp/agent.ts"),
        import("../client/in-process-client.ts"),
        import("../../mcp/identity.ts"),
      ]);
    const { backend, heartbeatMs, replyTimeoutMs } = this.opts;
    const agent = new McpAgent({
      system: "hub",
      join: (client) =>
        InProcessClient.join(backend, {
          name: identity.name ?? who.nameFromClient(client),
          model: who.clientLabel(client),
          explicit: identity.explicit,
          ...(identity.purpose !== undefined && { purpose: identity.purpose }),
          ...(identity.color !== undefined && { color: identity.color }),
          heartbeatMs,
          replyTimeoutMs,
        }),
      maxWaitMs: this.opts.maxWaitMs,
      progressMs: this.opts.progressMs,
      version: who.packageVersion(),
    });
    const session: Session = {
      transport: undefined as unknown as Session["transport"],
      agent,
      lastSeen: Date.now(),
      busy: 0,
    };
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        this.sessions.set(id, session);
      },
      maxRequestBodySize: this.opts.maxBodyBytes,
    });
    transport.onclose = () => {
      if (transport.sessionId) this.sessions.delete(transport.sessionId);
      void agent.leave();
    };
    session.transport = transport;
    await agent.server.connect(transport);
    return session;
  }

  /** Answer one request of a session, counting it (and the stream it may open) as activity. */
  private async serve(session: Session, req: Request): Promise<Response> {
    session.busy++;
    session.lastSeen = Date.now();
    let response: Response;
    try {
      response = await session.transport.handleRequest(req);
    } catch (error) {
      session.busy--;
      throw error;
    }
    if (!response.body) {
      session.busy--;
      return response;
    }
    const done = () => {
      session.busy--;
      session.lastSeen = Date.now();
    };
    return new Response(tracked(response.body, done), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }

  private sweep(now = Date.now()): void {
    if (this.opts.idleMs === 0) return;
    for (const session of this.sessions.values()) {
      if (session.busy === 0 && now - session.lastSeen > this.opts.idleMs) void session.transport.close();
    }
  }

  /** The hub is stopping: every session ends, its agent leaves and what it held ends PEER_GONE. */
  async closeAll(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      sessions.map(async (s) => {
        await s.agent.leave("left: the hub is shutting down");
        await s.transport.close().catch(() => undefined);
      }),
    );
  }
}

/** The body passed through, with `onEnd` called once when it ends, fails or its reader goes away. */
function tracked(body: ReadableStream<Uint8Array>, onEnd: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          end();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        end();
        controller.error(error);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
}

interface Identity {
  name?: string;
  purpose?: string;
  color?: string;
  explicit: boolean;
}

/** Who the session's agent is, from the URL's query (`/mcp?name=reviewer&purpose=...`); a string is the error. */
function identityFrom(url: URL): Identity | string {
  const q = url.searchParams;
  const identity: Identity = { explicit: q.get("explicit") === "true" || q.get("explicit") === "1" };
  const name = q.get("name");
  if (name !== null) {
    if (!AgentName.safeParse(name).success)
      return `name ${JSON.stringify(name)}: names are 1-64 of [A-Za-z0-9._-]`;
    identity.name = name;
  }
  const purpose = q.get("purpose");
  if (purpose !== null) {
    if (purpose.length > 500) return "purpose is over 500 characters";
    identity.purpose = purpose;
  }
  const color = q.get("color");
  if (color !== null) {
    if (!Color.safeParse(color).success) return `color ${JSON.stringify(color)}: colours are #RRGGBB`;
    identity.color = color;
  }
  return identity;
}

/**
 * One MCP session as one agent of the pool: an MCP server (the official
 * SDK's) whose tools are the one tool table plus receive, over a ComsClient
 * it joins with once the MCP client has said who it is (its clientInfo names
 * the agent's card). Incoming prompts are held until taken, pushed as Claude
 * Code channel events, and settled PEER_GONE if the session ends first.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type ServerNotification,
} from "@modelcontextprotocol/sdk/types.js";
import type { ComsClient } from "../contract/client.ts";
import { toComsError } from "../contract/errors.ts";
import type { Message } from "../contract/schemas.ts";
import type { SystemKind } from "../tools/names.ts";
import type { InboundView } from "../tools/peer-text.ts";
import {
  errorText,
  parseParams,
  TOOL_TABLE,
  type ToolHost,
  type ToolNaming,
  type ToolSpec,
  toParameters,
} from "../tools/table.ts";
import { HeldPrompts } from "./held-prompts.ts";
import type { ClientInfo } from "./identity.ts";
import { arrivedLine, instructions, MCP_PREFIX, promptsText } from "./prompt-text.ts";
import { RECEIVE_DESCRIPTION, RECEIVE_NAME, ReceiveParams, receive } from "./receive.ts";

/** Claude Code's push of outside events into a session (research preview). */
export const CHANNEL_CAPABILITY = "claude/channel";
export const CHANNEL_METHOD = "notifications/claude/channel";

export interface McpAgentOptions {
  system: SystemKind;
  /** Join the pool; `client` is what the MCP client said it is (undefined if it never said). */
  join(client: ClientInfo | undefined): Promise<ComsClient>;
  /** Longest a blocking tool call waits before answering "still waiting, call again". */
  maxWaitMs: number;
  /** Progress notifications this often during a call whose request carries a progressToken. */
  progressMs: number;
  version: string;
}

interface Joined {
  client: ComsClient;
  held: HeldPrompts;
}

export class McpAgent {
  readonly server: Server;
  private readonly opts: McpAgentOptions;
  private readonly naming: ToolNaming;
  private joining: Promise<Joined> | undefined;
  private joined: Joined | undefined;
  private readonly sent = new Map<string, string>();
  private leaving: Promise<void> | undefined;

  constructor(opts: McpAgentOptions) {
    this.opts = opts;
    this.naming = {
      prefix: MCP_PREFIX,
      label: opts.system === "p2p" ? "pi-coms P2P" : "the pi-coms hub",
      frontEnd: "mcp",
    };
    this.server = new Server(
      { name: "pi-coms", version: opts.version },
      {
        capabilities: { tools: {}, experimental: { [CHANNEL_CAPABILITY]: {} } },
        instructions: instructions(),
      },
    );
    this.server.oninitialized = () => {
      this.join().catch(() => undefined); // a failed join is told by the first tool call, which retries
    };
    this.server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [
        ...TOOL_TABLE.map((spec) => ({
          name: `${MCP_PREFIX}_${spec.suffix}`,
          description: spec.description(this.naming),
          inputSchema: toParameters(spec.schema) as { type: "object" },
        })),
        {
          name: RECEIVE_NAME,
          description: RECEIVE_DESCRIPTION,
          inputSchema: toParameters(ReceiveParams) as { type: "object" },
        },
      ],
    }));
    this.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const name = request.params.name;
      const spec = TOOL_TABLE.find((s) => `${MCP_PREFIX}_${s.suffix}` === name);
      if (!spec && name !== RECEIVE_NAME) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name}`);
      const progressToken = request.params._meta?.progressToken;
      const stopProgress =
        progressToken === undefined
          ? () => {}
          : this.progress(name, (n) => extra.sendNotification(n as ServerNotification), progressToken);
      try {
        const text = await this.call(spec, request.params.arguments, extra.signal);
        return text;
      } catch (error) {
        return failure(errorText(error));
      } finally {
        stopProgress();
      }
    });
  }

  /** The pool's client once joined (for tests and the hub's session table). */
  get client(): ComsClient | undefined {
    return this.joined?.client;
  }

  /** Join once; a failed join is retried by the next call. */
  private join(): Promise<Joined> {
    if (this.leaving) return Promise.reject(new Error("PEER_GONE: this MCP session is closing"));
    this.joining ??= this.opts.join(this.server.getClientVersion()).then(
      (client) => {
        const held = new HeldPrompts(client, this.opts.system);
        held.onArrival((message) => this.push(held, message));
        this.joined = { client, held };
        return this.joined;
      },
      (error: unknown) => {
        this.joining = undefined;
        const coms = toComsError(error);
        throw new Error(`${coms.code}: could not join the pool: ${coms.message}`);
      },
    );
    return this.joining;
  }

  private async call(
    spec: ToolSpec | undefined,
    args: unknown,
    signal: AbortSignal,
  ): Promise<CallToolResult> {
    const { client, held } = await this.join();
    if (!spec) {
      const params = parseParams(ReceiveParams, args);
      const { text } = await receive(held, params, this.opts.maxWaitMs, signal);
      return { content: [{ type: "text", text }] };
    }
    const params = parseParams(spec.schema, args);
    const result = await spec.run(this.host(client, held), params as never, signal);
    return { content: [{ type: "text", text: result.text }], ...(result.isError ? { isError: true } : {}) };
  }

  private host(client: ComsClient, held: HeldPrompts): ToolHost {
    const sent = this.sent;
    const shown = (views: InboundView[], opening: string) => promptsText(views, opening);
    return {
      client,
      system: this.opts.system,
      project: client.self.project,
      naming: this.naming,
      maxWaitMs: this.opts.maxWaitMs,
      sentTo: (msgId) => sent.get(msgId),
      rememberSent(msgId, to) {
        sent.set(msgId, to);
        if (sent.size > 500) sent.delete(sent.keys().next().value as string);
      },
      chain: () => held.chain(),
      async reply(msgId, text) {
        const done = await held.reply(msgId, text, `${MCP_PREFIX}_reply`);
        return { ...done, details: { msg_id: msgId, ...done } };
      },
      // A prompt waiting for this agent ends its wait at once: two agents awaiting each other never deadlock.
      watchForPrompts: (cut) => held.watch(() => cut(held.takeAll().map((m) => held.view(m)))),
      cutShort: (views, waitedFor) => ({
        text: `${shown(views, `Stopped waiting: ${arrivedLine(views).replace("[pi-coms] ", "")}`)}\n\nYour message ${waitedFor.msgId} to "${waitedFor.to}" is still pending: after answering, call ${MCP_PREFIX}_await with msg_id ${waitedFor.msgId} to keep waiting.`,
        details: { state: "interrupted", msg_id: waitedFor.msgId },
      }),
      meanwhile: (views) => shown(views, `Meanwhile: ${arrivedLine(views).replace("[pi-coms] ", "")}`),
    };
  }

  /** Claude Code shows a channel event to the model without it asking; others ignore it. */
  private push(held: HeldPrompts, message: Message): void {
    const view = held.view(message);
    const meta: Record<string, string> = { msg_id: view.msg_id, sender: view.from, via: view.system };
    if (view.conversation_id) meta.conversation_id = view.conversation_id;
    this.server
      .notification({
        method: CHANNEL_METHOD,
        params: { content: promptsText([view], arrivedLine([view])), meta },
      } as unknown as ServerNotification)
      .catch(() => undefined); // not connected (any more): the prompt stays held for receive
  }

  private progress(
    tool: string,
    send: (notification: unknown) => Promise<void>,
    progressToken: string | number,
  ): () => void {
    let n = 0;
    const timer = setInterval(() => {
      n++;
      send({
        method: "notifications/progress",
        params: { progressToken, progress: n, message: `${tool}: still waiting` },
      }).catch(() => undefined);
    }, this.opts.progressMs);
    return () => clearInterval(timer);
  }

  /** Leave the pool: prompts still held end PEER_GONE for their senders, then the client leaves. */
  leave(why = "left before answering"): Promise<void> {
    this.leaving ??= (async () => {
      const joined = this.joined ?? (await this.joining?.catch(() => undefined));
      if (!joined) return;
      await joined.held.release(why);
      await joined.client.close().catch(() => undefined);
    })();
    return this.leaving;
  }
}

/**
 * An MCP server for a client that has joined already (a script embedding the
 * front end): connect `agent.server` to any SDK transport. Leaving closes the client.
 */
export function mcpAgentFor(
  client: ComsClient,
  opts: Partial<Pick<McpAgentOptions, "maxWaitMs" | "progressMs" | "version">> = {},
): McpAgent {
  return new McpAgent({
    system: client.transport,
    join: async () => client,
    maxWaitMs: opts.maxWaitMs ?? 45_000,
    progressMs: opts.progressMs ?? 10_000,
    version: opts.version ?? "0.0.0",
  });
}

function failure(text: string): CallToolResult {
  return { content: [{ type: "text", text }], isError: true };
}

/**
 * The MCP bridge as its MCP clients see it: the real `pi-coms mcp` process
 * spawned over stdio by the official SDK's Client, tool results read as
 * text, and the notifications it pushes collected as they come.
 */
import { resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { z } from "zod";
import { waitFor } from "./hub-harness.ts";

export const PI_COMS_CLI = resolve(import.meta.dirname, "..", "..", "client", "cli.ts");

export interface ToolText {
  text: string;
  isError: boolean;
}

export const ChannelNotification = z.object({
  method: z.literal("notifications/claude/channel"),
  params: z.object({ content: z.string(), meta: z.record(z.string(), z.string()) }),
});
export type ChannelEvent = z.infer<typeof ChannelNotification>["params"];

/** An SDK Client over any transport, collecting channel events. */
export class McpPeer {
  readonly client: Client;
  readonly channel: ChannelEvent[] = [];
  stderr = "";

  constructor(name = "test-client", version = "1.0.0") {
    this.client = new Client({ name, version });
    this.client.setNotificationHandler(ChannelNotification, (n) => {
      this.channel.push(n.params);
    });
  }

  connect(transport: Transport): Promise<void> {
    return this.client.connect(transport);
  }

  async call(
    name: string,
    args: Record<string, unknown> = {},
    options: Parameters<Client["callTool"]>[2] = {},
  ): Promise<ToolText> {
    const result = await this.client.callTool({ name, arguments: args }, undefined, {
      timeout: 120_000,
      ...options,
    });
    const content = (result.content ?? []) as Array<{ type: string; text?: string }>;
    return { text: content.map((c) => c.text ?? "").join("\n"), isError: result.isError === true };
  }

  /** Call and expect success; the text. */
  async ok(name: string, args: Record<string, unknown> = {}): Promise<string> {
    const result = await this.call(name, args);
    if (result.isError) throw new Error(`${name} failed: ${result.text}`);
    return result.text;
  }

  channelFor(msgId: string): Promise<ChannelEvent> {
    return waitFor(() => this.channel.find((e) => e.meta.msg_id === msgId), {
      what: `a channel event for ${msgId}`,
      timeoutMs: 20_000,
    });
  }
}

/** A `pi-coms mcp` process started by an SDK Client over stdio. */
export class StdioBridge extends McpPeer {
  readonly transport: StdioClientTransport;

  constructor(args: string[], env: NodeJS.ProcessEnv, clientName = "test-client") {
    super(clientName);
    this.transport = new StdioClientTransport({
      command: process.execPath,
      args: [PI_COMS_CLI, "mcp", ...args],
      env: env as Record<string, string>,
      stderr: "pipe",
    });
    this.transport.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk;
    });
  }

  static async start(args: string[], env: NodeJS.ProcessEnv, clientName?: string): Promise<StdioBridge> {
    const bridge = new StdioBridge(args, env, clientName);
    await bridge.connect(bridge.transport);
    return bridge;
  }

  get pid(): number {
    return this.transport.pid as number;
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}

/** The msg_id of the (first) peer prompt in a tool result or channel text. */
export function promptId(text: string): string {
  const id = /<peer-prompt [^>]*msg_id="([0-9A-Z]{26})"/.exec(text)?.[1];
  if (!id) throw new Error(`no peer prompt in: ${text}`);
  return id;
}

/** The msg_id a send result names. */
export function sentId(text: string): string {
  const id = /msg_id ([0-9A-Z]{26})/.exec(text)?.[1];
  if (!id) throw new Error(`no msg_id in: ${text}`);
  return id;
}

/** Whether a process with this pid is still alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

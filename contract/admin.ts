/**
 * The operator's view of a hub (the `admin.watch` subscription): every agent
 * and the messages flowing between them, as a snapshot followed by batched
 * changes. Admin scope means the hub token or a dashboard session, never an
 * agent credential, and the scope is read-only: nothing here sends or answers.
 */
import { z } from "zod";
import { AgentCard, AgentId, ErrorCode, MsgId } from "./schemas.ts";

/** queued → delivered (the recipient took it) → replied | error. */
export const MessageState = z.enum(["queued", "delivered", "replied", "error"]);

export const MessageRow = z.object({
  msg_id: MsgId,
  from: z.string(),
  from_id: AgentId,
  to: z.string(),
  to_id: AgentId,
  hops: z.number().int(),
  conversation_id: z.string().optional(),
  chain_id: z.string().optional(),
  state: MessageState,
  /** Set when the state is error. */
  code: ErrorCode.optional(),
  /** Prompt size in bytes, and the reply's once replied. */
  bytes: z.number().int(),
  reply_bytes: z.number().int().optional(),
  created_at: z.number().int(),
  delivered_at: z.number().int().optional(),
  settled_at: z.number().int().optional(),
  /** The start of the prompt and of the reply or error; absent when the hub runs with content off. */
  prompt_preview: z.string().optional(),
  reply_preview: z.string().optional(),
});

export const HubInfo = z.object({
  project: z.string(),
  /** Whether message text previews are shown (`--dashboard-content on|off`). */
  content: z.boolean(),
  started_at: z.number().int(),
});

export const AdminEvent = z.discriminatedUnion("kind", [
  /** First event of every subscription: the whole current state (latest messages only). */
  z.object({
    kind: z.literal("snapshot"),
    hub: HubInfo,
    agents: z.array(AgentCard),
    messages: z.array(MessageRow),
    at: z.number().int(),
  }),
  /** What changed since the previous event: whole rows and cards, replacing the earlier ones. */
  z.object({
    kind: z.literal("changes"),
    agents: z.array(AgentCard),
    removed: z.array(AgentId),
    messages: z.array(MessageRow),
    at: z.number().int(),
  }),
]);

export type MessageState = z.infer<typeof MessageState>;
export type MessageRow = z.infer<typeof MessageRow>;
export type HubInfo = z.infer<typeof HubInfo>;
export type AdminEvent = z.infer<typeof AdminEvent>;

/** What serves admin.watch; a transport puts it on the context only for an admin-scope request. */
export interface AdminBackend {
  watch(signal: AbortSignal | undefined): AsyncIterable<AdminEvent>;
}

/**
 * Zod schemas for everything that crosses a process boundary. Every type the
 * rest of the code uses for wire data is inferred from these; nothing is
 * declared twice.
 */
import { z } from "zod";
import { checkSchemaBounds } from "./json-bounds.ts";

/** Upper bound on a prompt or reply text, in UTF-16 code units (~256 KiB of ASCII). */
export const MAX_TEXT_LENGTH = 256 * 1024;

export const AgentName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "names are 1-64 of [A-Za-z0-9._-], starting alphanumeric");
export const ProjectName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "projects are 1-128 of [A-Za-z0-9._-], starting alphanumeric");
export const Color = z.string().regex(/^#[0-9a-fA-F]{6}$/, "colours are #RRGGBB");
/** ULID: 26 Crockford base32 characters, time-ordered. */
export const MsgId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "msg_id is a ULID");
export const AgentId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "agent ids are ULIDs");
export const Secret = z.string().min(16).max(512);

export const AgentStatus = z.enum(["online", "stale", "offline"]);

/**
 * The card's fields an owner may leave out, without their defaults: a patch
 * or a resume built from these says only what it carries (zod's partial()
 * of a field with a default fills the default in, which would overwrite
 * what the card holds).
 */
const Purpose = z.string().max(500);
const Model = z.string().max(200);
const Explicit = z.boolean();
const ContextUsedPct = z.number().min(0).max(100).nullable();
const QueueDepth = z.number().int().min(0);

export const AgentCard = z.object({
  id: AgentId,
  name: AgentName,
  purpose: Purpose.default(""),
  model: Model.default(""),
  color: Color.optional(),
  explicit: Explicit.default(false),
  project: ProjectName,
  context_used_pct: ContextUsedPct.default(null),
  queue_depth: QueueDepth.default(0),
  status: AgentStatus.default("online"),
  started_at: z.number().int(),
});

/** The part of a card that its owner updates while running (ping / heartbeat): what is absent stays as it is. */
export const CardPatch = z.object({
  model: Model.optional(),
  context_used_pct: ContextUsedPct.optional(),
  queue_depth: QueueDepth.optional(),
});

/**
 * A JSON Schema object the reply must satisfy; kept opaque here, checked by
 * the receiver. Bounded in depth and size (contract/json-bounds.ts) so no
 * recursive reader (serializer, schema compiler) can be overflowed by it.
 */
export const ResponseSchema = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  const check = checkSchemaBounds(schema);
  if (!check.ok) ctx.addIssue({ code: "custom", message: check.message });
});

export const SendInput = z.object({
  to: AgentName,
  prompt: z.string().min(1).max(MAX_TEXT_LENGTH),
  /** Set by a client that retries: the same id is accepted once (idempotent send). */
  msg_id: MsgId.optional(),
  /** Hops already taken by the message that caused this one; the send adds one. */
  hops: z.number().int().min(0).default(0),
  conversation_id: z.string().min(1).max(128).optional(),
  response_schema: ResponseSchema.optional(),
  /** Groups messages that were caused by one another (forwarding chains). */
  chain_id: z.string().min(1).max(128).optional(),
});

export const Message = z.object({
  msg_id: MsgId,
  from: AgentName,
  from_id: AgentId,
  to: AgentName,
  to_id: AgentId,
  prompt: z.string().max(MAX_TEXT_LENGTH),
  hops: z.number().int().min(1),
  conversation_id: z.string().max(128).optional(),
  response_schema: ResponseSchema.optional(),
  chain_id: z.string().max(128).optional(),
  created_at: z.number().int(),
});

export const SendAck = z.object({
  msg_id: MsgId,
  /** The name the recipient really has (names are aliases; ids are stable). */
  to: AgentName,
  to_id: AgentId,
  accepted_at: z.number().int(),
  queue_depth: z.number().int().min(0),
});

export const ErrorCode = z.enum([
  "UNKNOWN_PEER",
  "PEER_GONE",
  "HOP_LIMIT",
  "TOO_LARGE",
  "EXPIRED",
  "TIMEOUT",
  "CANCELLED",
  "UNAUTHORIZED",
  "BAD_INPUT",
  "SCHEMA_MISMATCH",
  "RATE_LIMITED",
  /** The recipient holds as many unanswered messages as the hub allows: nothing was sent. */
  "QUEUE_FULL",
  "UNAVAILABLE",
]);

/** What the receiver settles an inbound message with. */
export const ReplyResult = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    text: z.string().max(MAX_TEXT_LENGTH),
    /** The parsed JSON value when the message carried a response_schema. */
    value: z.unknown().optional(),
  }),
  z.object({ ok: z.literal(false), code: ErrorCode, message: z.string().max(4000) }),
]);

/** The state of a sent message as its sender sees it. */
export const Outcome = z.discriminatedUnion("state", [
  z.object({
    state: z.literal("pending"),
    msg_id: MsgId,
    delivered: z.boolean(),
    /** Hub: set to "offline" while the recipient is offline (the message waits in its queue). */
    recipient: AgentStatus.optional(),
  }),
  z.object({
    state: z.literal("reply"),
    msg_id: MsgId,
    from: AgentName,
    text: z.string(),
    value: z.unknown().optional(),
    replied_at: z.number().int(),
  }),
  z.object({
    state: z.literal("error"),
    msg_id: MsgId,
    code: ErrorCode,
    message: z.string(),
  }),
]);

export const ListInput = z
  .object({ include_explicit: z.boolean().default(false) })
  .default({ include_explicit: false });
export const MsgRef = z.object({ msg_id: MsgId });
export const SettleInput = z.object({ msg_id: MsgId, result: ReplyResult });
export const AckInput = z.object({ msg_ids: z.array(MsgId).min(1).max(1000) });

/** What is left out stays as the card has it on a resume, and starts from the card's default otherwise. */
export const RegisterInput = z.object({
  name: AgentName,
  purpose: Purpose.optional(),
  model: Model.optional(),
  color: Color.optional(),
  explicit: Explicit.optional(),
  project: ProjectName.optional(),
  /** Re-registering after a restart with the id and credential already held keeps the same identity. */
  resume: z.object({ id: AgentId, agent_token: Secret }).optional(),
});
export const RegisterResult = z.object({ card: AgentCard, agent_token: Secret });

export const HelloInput = z.object({ id: AgentId, agent_token: Secret });

/** One event on an agent's inbox stream. */
export const InboxEvent = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("message"), message: Message }),
  z.object({ kind: z.literal("outcome"), outcome: Outcome }),
  z.object({
    kind: z.literal("peers"),
    agents: z.array(AgentCard),
    /** Set by a hub: `agents` holds only the cards that changed and `removed` the ids that left (O(changes), not O(agents)). */
    delta: z.boolean().optional(),
    removed: z.array(AgentId).optional(),
  }),
]);

export type AgentCard = z.infer<typeof AgentCard>;
export type AgentStatus = z.infer<typeof AgentStatus>;
export type CardPatch = z.infer<typeof CardPatch>;
export type SendInput = z.input<typeof SendInput>;
export type Message = z.infer<typeof Message>;
export type SendAck = z.infer<typeof SendAck>;
export type ErrorCode = z.infer<typeof ErrorCode>;
export type ReplyResult = z.infer<typeof ReplyResult>;
export type Outcome = z.infer<typeof Outcome>;
export type RegisterInput = z.input<typeof RegisterInput>;
export type RegisterResult = z.infer<typeof RegisterResult>;
export type HelloInput = z.infer<typeof HelloInput>;
export type InboxEvent = z.infer<typeof InboxEvent>;

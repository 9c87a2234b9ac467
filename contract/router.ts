/**
 * The one tRPC router both transports serve. Procedures only validate and
 * delegate to a ComsBackend found on the context: the P2P peer and the hub
 * each supply a backend, the socket and HTTP adapters each supply a context,
 * and the router (hence the client type) stays the same.
 */
import { initTRPC, type TrackedEnvelope, tracked } from "@trpc/server";
import superjson from "superjson";
import { z } from "zod";
import { isPushFeed, mapFeed, type PushFeed } from "../lib/push-feed.ts";
import type { AdminBackend } from "./admin.ts";
import { comsCodeOf, comsError } from "./errors.ts";
import { RegisterAnswer, RegisterRequest } from "./features.ts";
import {
  AckInput,
  type AgentCard,
  AgentCard as AgentCardSchema,
  CardPatch,
  HelloInput,
  type InboxEvent,
  ListInput,
  MsgRef,
  Outcome,
  SendAck,
  SendInput,
  SettleInput,
} from "./schemas.ts";

/** An agent whose identity the transport has verified (P2P hello, hub agent credential). */
export interface Caller {
  id: string;
  name: string;
}

/** One inbox event with the id a resuming subscriber passes back as lastEventId. */
export interface InboxItem {
  id: string;
  event: InboxEvent;
}

/** One change of a sent message's outcome on the `messages.outcomes` stream; `seq` orders them. */
export interface OutcomeEvent {
  seq: number;
  outcome: Outcome;
}

/**
 * What a server does. Methods that a transport does not offer throw
 * `comsError("BAD_INPUT", ...)`; a P2P peer, for instance, has no register or inbox.
 */
export interface ComsBackend {
  register(input: z.output<typeof RegisterRequest>): Promise<z.output<typeof RegisterAnswer>>;
  /** Verify an agent credential; returns the agent's card. */
  hello(input: z.output<typeof HelloInput>): Promise<AgentCard>;
  heartbeat(caller: Caller, patch: CardPatch): Promise<AgentCard>;
  leave(caller: Caller): Promise<void>;
  list(caller: Caller | null, input: z.output<typeof ListInput>): Promise<AgentCard[]>;
  /** P2P: the serving agent's own card (the ping). Hub: the caller's card. */
  card(caller: Caller | null): Promise<AgentCard>;
  send(caller: Caller, input: z.output<typeof SendInput>): Promise<SendAck>;
  get(caller: Caller, msgId: string): Promise<Outcome>;
  /** Yields the outcome each time it changes and ends once it is final. */
  watch(caller: Caller, msgId: string, signal: AbortSignal | undefined): AsyncIterable<Outcome>;
  /**
   * Optional (P2P): outcome changes of every message the caller sent here, in
   * batches, starting with those after `after` (a seq it saw), so a stream
   * re-opened after a drop loses nothing. Without it the call is a BAD_INPUT.
   */
  outcomes?(caller: Caller, after: number, signal: AbortSignal | undefined): AsyncIterable<OutcomeEvent[]>;
  /**
   * Messages for the caller and outcomes of what it sent, resumable from
   * lastEventId; with `peers` (the default) also the peers changes.
   */
  inbox(
    caller: Caller,
    lastEventId: string | null,
    signal: AbortSignal | undefined,
    opts?: { peers: boolean },
  ): AsyncIterable<InboxItem>;
  ack(caller: Caller, msgIds: string[]): Promise<void>;
  settle(caller: Caller, input: z.output<typeof SettleInput>): Promise<void>;
}

export interface ComsContext {
  backend: ComsBackend;
  caller: Caller | null;
  /** Connection-oriented transports bind a verified hello to the connection. */
  bindCaller?: (caller: Caller) => void;
  /** Set only for an operator's request (hub token or dashboard session): the read-only admin scope. */
  admin?: AdminBackend | undefined;
}

const t = initTRPC.context<ComsContext>().create({
  transformer: superjson,
  // Over SSE (the hub): a ping every 15 s, so a client can tell a quiet stream from a dead (half-open) one,
  // and the client is told to give up on one silent for 2.5 pings (hub/http/sse-writer.ts, silenceDeadlineMs).
  sse: { ping: { enabled: true, intervalMs: 15_000 }, client: { reconnectAfterInactivityMs: 37_500 } },
  errorFormatter({ shape, error }) {
    return { ...shape, data: { ...shape.data, stack: undefined, coms_code: comsCodeOf(error) } };
  },
});

const authed = t.procedure.use(({ ctx, next }) => {
  if (!ctx.caller) throw comsError("UNAUTHORIZED", "identify first: this call needs a verified agent");
  // tRPC merges this into the context: only the narrowed field is passed.
  return next({ ctx: { caller: ctx.caller } });
});

/**
 * Receipts that ride along with another call (additive): `ack` holds inbox
 * ids the caller acknowledges, applied as messages.ack would. Sent only to a
 * hub whose register result lists the "ride-acks" feature; others never see it.
 */
const Riders = { ack: AckInput.shape.msg_ids.optional() };

/**
 * Apply the riding acks in the same turn as the call, so one commit makes
 * both durable before either is answered; acks already applied when the call
 * itself is refused are still valid (an ack is idempotent).
 */
async function withAcks<T>(
  backend: ComsBackend,
  caller: Caller,
  ids: string[] | undefined,
  call: () => Promise<T>,
): Promise<T> {
  if (!ids) return call();
  const acked = backend.ack(caller, ids);
  acked.catch(() => {});
  const result = await call();
  await acked;
  return result;
}

const adminScope = t.procedure.use(({ ctx, next }) => {
  if (!ctx.admin) throw comsError("UNAUTHORIZED", "admin scope: needs the hub token or a dashboard session");
  return next({ ctx: { ...ctx, admin: ctx.admin } });
});

export const comsRouter = t.router({
  admin: t.router({
    /** The operator's live view: a snapshot, then batched changes of agents and messages. */
    watch: adminScope.subscription(({ ctx, signal }) => ctx.admin.watch(signal)),
  }),
  agents: t.router({
    register: t.procedure
      .input(RegisterRequest)
      .output(RegisterAnswer)
      .mutation(({ ctx, input }) => ctx.backend.register(input)),
    hello: t.procedure
      .input(HelloInput)
      .output(AgentCardSchema)
      .mutation(async ({ ctx, input }) => {
        const card = await ctx.backend.hello(input);
        ctx.bindCaller?.({ id: card.id, name: card.name });
        return card;
      }),
    heartbeat: authed
      .input(CardPatch.extend(Riders))
      .output(AgentCardSchema)
      .mutation(({ ctx, input: { ack, ...patch } }) =>
        withAcks(ctx.backend, ctx.caller, ack, () => ctx.backend.heartbeat(ctx.caller, patch)),
      ),
    leave: authed.mutation(({ ctx }) => ctx.backend.leave(ctx.caller)),
    list: t.procedure
      .input(ListInput)
      .output(z.array(AgentCardSchema))
      .query(({ ctx, input }) => ctx.backend.list(ctx.caller, input)),
    card: t.procedure.output(AgentCardSchema).query(({ ctx }) => ctx.backend.card(ctx.caller)),
  }),
  messages: t.router({
    send: authed
      .input(SendInput.extend(Riders))
      .output(SendAck)
      .mutation(({ ctx, input: { ack, ...send } }) =>
        withAcks(ctx.backend, ctx.caller, ack, () => ctx.backend.send(ctx.caller, send)),
      ),
    get: authed
      .input(MsgRef)
      .output(Outcome)
      .query(({ ctx, input }) => ctx.backend.get(ctx.caller, input.msg_id)),
    watch: authed
      .input(MsgRef)
      .subscription(({ ctx, input, signal }) => ctx.backend.watch(ctx.caller, input.msg_id, signal)),
    outcomes: authed
      .input(
        z
          .object({ after: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0) })
          .default({ after: 0 }),
      )
      .subscription(({ ctx, input, signal }) => {
        if (!ctx.backend.outcomes) throw comsError("BAD_INPUT", "messages.outcomes is not served here");
        return ctx.backend.outcomes(ctx.caller, input.after, signal);
      }),
    inbox: authed
      .input(
        z
          .object({
            lastEventId: z.string().max(64).nullish(),
            /** false: no peers events on this stream (a client that does not watch presence). */
            peers: z.boolean().optional(),
          })
          .default({}),
      )
      .subscription(({ ctx, input, signal }) =>
        // tracked() makes the SSE adapter emit `id:` so a reconnect resumes after it.
        trackedInbox(
          ctx.backend.inbox(ctx.caller, input.lastEventId ?? null, signal, { peers: input.peers ?? true }),
        ),
      ),
    ack: authed.input(AckInput).mutation(({ ctx, input }) => ctx.backend.ack(ctx.caller, input.msg_ids)),
    settle: authed
      .input(SettleInput.extend(Riders))
      .mutation(({ ctx, input: { ack, ...settle } }) =>
        withAcks(ctx.backend, ctx.caller, ack, () => ctx.backend.settle(ctx.caller, settle)),
      ),
  }),
});

export type ComsRouter = typeof comsRouter;

/** Inbox items as tracked events; a push feed stays one (the hub's SSE writer attaches to it). */
function trackedInbox(items: AsyncIterable<InboxItem>): AsyncIterable<TrackedEnvelope<InboxEvent>> {
  if (isPushFeed(items)) return mapFeed(items as PushFeed<InboxItem>, (item) => tracked(item.id, item.event));
  return (async function* () {
    for await (const item of items) yield tracked(item.id, item.event);
  })();
}

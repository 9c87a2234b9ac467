/**
 * Acting as an agent from a script: every inbound message goes to a handler
 * and is settled exactly once with what it returns, or with an error when it
 * throws, so a sender never waits on a message the script dropped. A thrown
 * ComsError keeps its code; anything else answers PEER_GONE, as a failed pi
 * turn does.
 */
import type { ComsClient } from "../contract/client.ts";
import { ComsError } from "../contract/errors.ts";
import { checkReply } from "../contract/response-schema.ts";
import type { Message, ReplyResult } from "../contract/schemas.ts";

/** A plain text reply, or text plus the JSON value a `response_schema` asked for. */
export type ServeReply = string | { text: string; value?: unknown };

export type ServeHandler = (
  message: Message,
  context: { signal: AbortSignal },
) => ServeReply | Promise<ServeReply>;

export interface ServeOptions {
  /** Messages handled at once; more wait in arrival order (default 1, like an agent's turn). */
  concurrency?: number;
  /** Told after each message was settled, with what it was settled with. */
  onSettled?: (message: Message, result: ReplyResult) => void;
  /** Told when settling failed (the connection is gone); default: a line on stderr. */
  onError?: (error: unknown, message: Message) => void;
}

export interface Serving {
  /** Messages settled so far. */
  readonly settled: number;
  /**
   * Stop taking messages, abort the handlers' signal and wait until the
   * in-flight ones are settled. Queued ones are left to the transport.
   * Idempotent; calling it from `onSettled` takes effect before the next message starts.
   */
  stop(): Promise<void>;
}

export function serve(client: ComsClient, handler: ServeHandler, options: ServeOptions = {}): Serving {
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
  const onError =
    options.onError ??
    ((error: unknown, message: Message) => {
      console.error(`pi-coms: could not settle ${message.msg_id}: ${describe(error)}`);
    });
  const abort = new AbortController();
  const waiting: Message[] = [];
  const running = new Set<Promise<void>>();
  let settled = 0;
  let stopping: Promise<void> | undefined;

  const publishDepth = () => {
    try {
      client.updateCard({ queue_depth: waiting.length + running.size });
    } catch {
      // The card is cosmetic; a closed client must not break settling.
    }
  };

  const pump = () => {
    while (running.size < concurrency && waiting.length > 0) {
      const message = waiting.shift() as Message;
      const task = handle(message).finally(() => {
        running.delete(task);
        publishDepth();
        pump();
      });
      running.add(task);
    }
  };

  const handle = async (message: Message) => {
    let result: ReplyResult;
    try {
      result = toResult(message, await handler(message, { signal: abort.signal }));
    } catch (error) {
      result =
        error instanceof ComsError
          ? { ok: false, code: error.code, message: error.message.slice(0, 4000) }
          : // Same code as a pi agent whose turn failed: the recipient could not produce an answer.
            {
              ok: false,
              code: "PEER_GONE",
              message: `the agent failed to answer: ${describe(error)}`.slice(0, 4000),
            };
    }
    try {
      await client.settle(message.msg_id, result);
      settled++;
      options.onSettled?.(message, result);
    } catch (error) {
      onError(error, message);
    }
  };

  const unsubscribe = client.onInbound((message) => {
    if (abort.signal.aborted) return;
    waiting.push(message);
    publishDepth();
    pump();
  });

  return {
    get settled() {
      return settled;
    },
    stop() {
      // Synchronous up to the wait, so a caller inside onSettled stops the next message from starting.
      stopping ??= (async () => {
        unsubscribe();
        // Queued messages that never started stay unsettled on purpose: the hub hands them
        // to the next session with this identity, and a P2P sender sees the peer gone.
        waiting.length = 0;
        abort.abort();
        await Promise.allSettled([...running]);
      })();
      return stopping;
    },
  };
}

/** A reply to a message that carries a response_schema must be JSON matching it, as with pi agents. */
function toResult(message: Message, reply: ServeReply): ReplyResult {
  const text = typeof reply === "string" ? reply : reply?.text;
  if (typeof text !== "string")
    return { ok: false, code: "BAD_INPUT", message: "the agent's handler returned no text" };
  const explicitValue = typeof reply === "string" ? undefined : reply.value;
  if (message.response_schema === undefined) {
    return explicitValue === undefined ? { ok: true, text } : { ok: true, text, value: explicitValue };
  }
  const check = checkReply(
    explicitValue === undefined ? text : JSON.stringify(explicitValue),
    message.response_schema,
  );
  return check.ok
    ? { ok: true, text, value: check.value }
    : { ok: false, code: "SCHEMA_MISMATCH", message: check.message };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

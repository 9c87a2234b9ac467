import type { z } from "zod";
import { ulid } from "../../contract/ids.ts";
import type { Message, SendInput } from "../../contract/schemas.ts";

/**
 * A sent message as it is stored and delivered, fields in the wire order.
 * The usual message (no optional field) is one literal: an object given
 * fields after it was made keeps them in a separate property store.
 */
export function messageOf(
  input: z.output<typeof SendInput>,
  from: { id: string; name: string },
  to: { id: string; name: string },
  hops: number,
  now: number,
): Message {
  const message: Message = {
    msg_id: input.msg_id ?? ulid(now),
    from: from.name,
    from_id: from.id,
    to: to.name,
    to_id: to.id,
    prompt: input.prompt,
    hops,
    created_at: now,
  };
  if (!input.conversation_id && !input.response_schema && !input.chain_id) return message;
  // The optional fields go before created_at on the wire: the rare message with one is rebuilt.
  const { created_at, ...fields } = message;
  if (input.conversation_id) fields.conversation_id = input.conversation_id;
  if (input.response_schema) fields.response_schema = input.response_schema;
  if (input.chain_id) fields.chain_id = input.chain_id;
  return { ...fields, created_at };
}
